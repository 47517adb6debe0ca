"""Every layer kind, lowered to ONNX and run on onnxruntime (CPU), against
the same computation in PyTorch with the same weights.

Each case is a one- or few-layer network. Every parameter and buffer gets a
random value (non-zero biases, positive running variances), the exported
model's initializers are read back, and the PyTorch side computes with
exactly those tensors. Outputs must agree to 1e-5 (relative and absolute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper, shape_inference  # noqa: E402

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.elaborate import layer_node  # noqa: E402
from i2dl_dsl.names import layer_output  # noqa: E402
from i2dl_dsl.lowering.export import DEFAULT_OPSET, parameter_shapes, to_onnx  # noqa: E402
from i2dl_dsl.runtime import create_session  # noqa: E402
from helpers import random_weights  # noqa: E402

TOL = 1e-5
BATCH = 3


@dataclass(frozen=True)
class Case:
    id: str
    input: str  # the declared input dims, as written in `input x[...]`
    body: str  # the network's statements
    torch: Callable  # (x, params) -> the expected output


def compiled(tmp_path, case: Case):
    source = tmp_path / "case.net"
    source.write_text(f"network Case {{\n    input x[{case.input}]\n{case.body}\n}}\n")
    return check(source)


def export(tmp_path, case: Case, opset: int = DEFAULT_OPSET):
    net = compiled(tmp_path, case)
    return net, to_onnx(net, opset=opset, weights=random_weights(parameter_shapes(net)))


def export_and_run(tmp_path, case: Case, opset: int = DEFAULT_OPSET):
    """(x, onnxruntime's output, the model's initializers as torch tensors)."""
    net, model = export(tmp_path, case, opset)
    params = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    shape = net.analysis.shapes[net.input]
    x = np.random.default_rng(0).standard_normal((BATCH, *shape)).astype(np.float32)
    session = create_session(model.SerializeToString(), "cpu").session
    (y,) = session.run(None, {net.input: x})
    return x, y, params


# ----------------------------------------------------------------- oracles


def conv(name, pad=(0, 0, 0, 0), **kw):
    """F.conv2d with the layer's weights; `pad` (left, right, top, bottom) zeros first."""
    def f(x, p):
        return F.conv2d(F.pad(x, pad), p[f"{name}.weight"], p.get(f"{name}.bias"), **kw)
    return f


def upconv(name, **kw):
    return lambda x, p: F.conv_transpose2d(x, p[f"{name}.weight"], p.get(f"{name}.bias"), **kw)


def padded_maxpool(pad, *args, **kw):
    return lambda x, p: F.max_pool2d(F.pad(x, pad, value=float("-inf")), *args, **kw)


def padded_avgpool_excluding(pad, k, s):
    """Average over the real pixels only: window sums over window counts."""
    def f(x, p):
        ones = torch.ones_like(x)
        total = F.avg_pool2d(F.pad(x, pad), k, s, divisor_override=1)
        count = F.avg_pool2d(F.pad(ones, pad), k, s, divisor_override=1)
        return total / count
    return f


def batchnorm(name, eps=1e-5):
    def f(x, p):
        return F.batch_norm(x, p[f"{name}.running_mean"], p[f"{name}.running_var"], p[f"{name}.weight"],
                            p[f"{name}.bias"], training=False, eps=eps)
    return f


def linear(name):
    return lambda x, p: F.linear(x, p[f"{name}.weight"], p.get(f"{name}.bias"))


def layer_norm(name, features, eps=1e-5):
    return lambda x, p: F.layer_norm(x, (features,), p[f"{name}.weight"], p[f"{name}.bias"], eps)


def layer_norm_2d(name, eps):
    """ConvNeXt's LayerNorm2d: channels last, LayerNorm over them, back."""
    def f(x, p):
        last = x.permute(0, 2, 3, 1)
        return F.layer_norm(last, (x.shape[1],), p[f"{name}.weight"], p[f"{name}.bias"], eps).permute(0, 3, 1, 2)
    return f


def group_norm(name, groups, eps=1e-5):
    return lambda x, p: F.group_norm(x, groups, p[f"{name}.weight"], p[f"{name}.bias"], eps)


def prelu_per_channel(name):
    return lambda x, p: F.prelu(x, p[f"{name}.weight"])


def maxout(pieces, axis):
    def f(x, p):
        shape = list(x.shape)
        grouped = shape[:axis] + [shape[axis] // pieces, pieces] + shape[axis + 1:]
        return x.reshape(grouped).amax(dim=axis + 1)
    return f


def recurrent(kind, name, features, hidden, sequences):
    """torch.nn.LSTM / nn.RNN (batch first) loaded with the layer's parameters."""
    def f(x, p):
        module = {"lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[kind](features, hidden, batch_first=True)
        module.load_state_dict({k.removeprefix(f"{name}."): v for k, v in p.items() if k.startswith(f"{name}.")})
        out, _ = module(x)
        return out if sequences else out[:, -1]
    return f


def chain(*fs):
    def f(x, p):
        for g in fs:
            x = g(x, p)
        return x
    return f


def conv_pair(merge):
    """Two or three 1x1 convolutions of the input (conv1, conv2, ...) merged."""
    def f(x, p):
        outs = [conv(f"conv{i}")(x, p) for i in range(1, 4) if f"conv{i}.weight" in p]
        return merge(outs)
    return f


# ----------------------------------------------------------------- cases

IMAGE = "4, 8, 8"
ODD = "4, 7, 7"
SEQ = "T=5, 6"
VEC = "12"

CASES = [
    # conv
    Case("conv", IMAGE, "l: conv(6, k=3)", conv("l")),
    Case("conv-no-bias", IMAGE, "l: conv(6, k=3, bias=false)", conv("l")),
    Case("conv-stride-pad", ODD, "l: conv(6, k=3, s=2, p=1)", conv("l", stride=2, padding=1)),
    Case("conv-rect", ODD, "l: conv(5, k=[3, 1], s=[1, 2], p=[1, 0])", conv("l", stride=(1, 2), padding=(1, 0))),
    Case("conv-groups", IMAGE, "l: conv(6, k=3, p=1, groups=2)", conv("l", padding=1, groups=2)),
    Case("conv-depthwise", IMAGE, "l: conv(8, k=3, p=1, groups=4)", conv("l", padding=1, groups=4)),
    Case("conv-dilation", IMAGE, "l: conv(6, k=3, d=2, p=2)", conv("l", padding=2, dilation=2)),
    Case("conv-dilation-rect", IMAGE, "l: conv(6, k=3, d=[1, 2])", conv("l", dilation=(1, 2))),
    Case("conv-same", IMAGE, "l: conv(6, k=3, p=same)", conv("l", padding=1)),
    # 8 → ⌈8/2⌉ = 4: (4-1)·2 + 3 - 8 = 1 pixel of padding, at the end.
    Case("conv-same-stride2", IMAGE, "l: conv(6, k=3, s=2, p=same)", conv("l", pad=(0, 1, 0, 1), stride=2)),
    # even kernel, stride 1: 3 pixels, one before and two after.
    Case("conv-same-even-kernel", IMAGE, "l: conv(6, k=4, p=same)", conv("l", pad=(1, 2, 1, 2))),
    # 7 → ⌈7/3⌉ = 3 with k=5, d=2 (F = 9): (3-1)·3 + 9 - 7 = 8 → 4 and 4.
    Case("conv-same-dilated-stride3", ODD, "l: conv(6, k=5, s=3, d=2, p=same)", conv("l", stride=3, dilation=2, padding=4)),
    Case("conv-full", IMAGE, "l: conv(6, k=3, p=full)", conv("l", padding=2)),
    Case("conv-floor", IMAGE, "l: conv(6, k=3, s=2, p=1, round=floor)", conv("l", stride=2, padding=1)),
    # (8 - 3)/2 + 1 = 3.5 → 4: a fourth window needs one padded column at the end.
    Case("conv-ceil", IMAGE, "l: conv(6, k=3, s=2, round=ceil)", conv("l", pad=(0, 1, 0, 1), stride=2)),
    # (8 - 3 + 2)/2 + 1 = 4.5 → 5: the fifth window reaches one column past the padding.
    Case("conv-ceil-padded", IMAGE, "l: conv(6, k=3, s=2, p=1, round=ceil)", conv("l", pad=(1, 2, 1, 2), stride=2)),
    # (8 - 2 + 2)/3 + 1 = 3.67 → 4, but a fourth window would start in the end
    # padding, and PyTorch's ceil_mode drops it: 3.
    Case("conv-ceil-last-window-dropped", IMAGE, "l: conv(6, k=2, s=3, p=1, round=ceil)",
         conv("l", stride=3, padding=1)),
    # upconv
    Case("upconv", IMAGE, "l: upconv(6, k=2, s=2)", upconv("l", stride=2)),
    Case("upconv-no-bias", IMAGE, "l: upconv(6, k=4, s=2, p=1, bias=false)", upconv("l", stride=2, padding=1)),
    Case("upconv-output-padding", IMAGE, "l: upconv(6, k=3, s=2, p=1, output_padding=1)",
         upconv("l", stride=2, padding=1, output_padding=1)),
    Case("upconv-groups", IMAGE, "l: upconv(6, k=3, s=2, groups=2)", upconv("l", stride=2, groups=2)),
    Case("upconv-dilation", IMAGE, "l: upconv(6, k=3, d=2, p=1)", upconv("l", dilation=2, padding=1)),
    Case("upconv-rect", IMAGE, "l: upconv(5, k=[2, 3], s=[2, 1], p=[0, 1], output_padding=[1, 0])",
         upconv("l", stride=(2, 1), padding=(0, 1), output_padding=(1, 0))),
    # upsample
    Case("upsample-nearest", IMAGE, "l: upsample", lambda x, p: F.interpolate(x, scale_factor=2, mode="nearest")),
    Case("upsample-nearest-rect", ODD, "l: upsample(scale=[2, 3])",
         lambda x, p: F.interpolate(x, scale_factor=(2, 3), mode="nearest")),
    Case("upsample-bilinear", ODD, "l: upsample(mode=bilinear)",
         lambda x, p: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)),
    Case("upsample-bilinear-rect", IMAGE, "l: upsample(scale=[3, 2], mode=bilinear)",
         lambda x, p: F.interpolate(x, scale_factor=(3, 2), mode="bilinear", align_corners=False)),
    # maxpool
    Case("maxpool", IMAGE, "l: maxpool(k=2)", lambda x, p: F.max_pool2d(x, 2)),
    Case("maxpool-overlap-pad", ODD, "l: maxpool(k=3, s=2, p=1)", lambda x, p: F.max_pool2d(x, 3, 2, 1)),
    Case("maxpool-rect", IMAGE, "l: maxpool(k=[2, 4], s=[2, 1], p=[1, 2])",
         lambda x, p: F.max_pool2d(x, (2, 4), (2, 1), (1, 2))),
    Case("maxpool-floor", ODD, "l: maxpool(k=2, round=floor)", lambda x, p: F.max_pool2d(x, 2)),
    Case("maxpool-ceil", ODD, "l: maxpool(k=2, round=ceil)", lambda x, p: F.max_pool2d(x, 2, ceil_mode=True)),
    Case("maxpool-ceil-padded", IMAGE, "l: maxpool(k=3, s=2, p=1, round=ceil)",
         lambda x, p: F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
    # 7 → ⌈(7 - 2 + 2)/2⌉ + 1 = 5, but a fifth window would start in the end padding: 4.
    Case("maxpool-ceil-last-window-dropped", ODD, "l: maxpool(k=2, s=2, p=1, round=ceil)",
         lambda x, p: F.max_pool2d(x, 2, 2, 1, ceil_mode=True)),
    Case("maxpool-same-stride2", IMAGE, "l: maxpool(k=3, s=2, p=same)", padded_maxpool((0, 1, 0, 1), 3, 2)),
    # avgpool
    Case("avgpool", IMAGE, "l: avgpool(k=2)", lambda x, p: F.avg_pool2d(x, 2)),
    Case("avgpool-overlap-pad", ODD, "l: avgpool(k=3, s=2, p=1)", lambda x, p: F.avg_pool2d(x, 3, 2, 1)),
    Case("avgpool-exclude-pad", ODD, "l: avgpool(k=3, s=2, p=1, count_include_pad=false)",
         lambda x, p: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
    Case("avgpool-floor", ODD, "l: avgpool(k=2, round=floor)", lambda x, p: F.avg_pool2d(x, 2)),
    Case("avgpool-ceil", ODD, "l: avgpool(k=2, round=ceil)", lambda x, p: F.avg_pool2d(x, 2, ceil_mode=True)),
    Case("avgpool-ceil-k3", IMAGE, "l: avgpool(k=3, s=2, round=ceil)",
         lambda x, p: F.avg_pool2d(x, 3, 2, ceil_mode=True)),
    # The last window overhangs the padding: PyTorch divides by the part
    # inside input + padding, not by k·k.
    Case("avgpool-ceil-padded", IMAGE, "l: avgpool(k=3, s=2, p=1, round=ceil)",
         lambda x, p: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True)),
    Case("avgpool-ceil-padded-exclude", IMAGE, "l: avgpool(k=3, s=2, p=1, round=ceil, count_include_pad=false)",
         lambda x, p: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)),
    Case("avgpool-ceil-last-window-dropped", ODD, "l: avgpool(k=2, s=2, p=1, round=ceil)",
         lambda x, p: F.avg_pool2d(x, 2, 2, 1, ceil_mode=True)),
    Case("avgpool-ceil-rect", ODD, "l: avgpool(k=[3, 2], s=[2, 3], p=[1, 0], round=ceil)",
         lambda x, p: F.avg_pool2d(x, (3, 2), (2, 3), (1, 0), ceil_mode=True)),
    Case("avgpool-same-stride2", IMAGE, "l: avgpool(k=3, s=2, p=same)",
         lambda x, p: F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 3, 2)),
    Case("avgpool-same-stride2-exclude", IMAGE, "l: avgpool(k=3, s=2, p=same, count_include_pad=false)",
         padded_avgpool_excluding((0, 1, 0, 1), 3, 2)),
    # global pools
    Case("global-avgpool", ODD, "l: global_avgpool", lambda x, p: F.adaptive_avg_pool2d(x, 1)),
    Case("global-maxpool", ODD, "l: global_maxpool", lambda x, p: F.adaptive_max_pool2d(x, 1)),
    # flatten, fc, dropout
    Case("flatten-image", ODD, "l: flatten", lambda x, p: torch.flatten(x, 1)),
    Case("flatten-sequence", SEQ, "l: flatten", lambda x, p: torch.flatten(x, 1)),
    Case("fc", VEC, "l: fc(5)", linear("l")),
    Case("fc-no-bias", VEC, "l: fc(5, bias=false)", linear("l")),
    Case("flatten-fc", ODD, "f: flatten\nl: fc(5)", lambda x, p: linear("l")(torch.flatten(x, 1), p)),
    Case("dropout-image", IMAGE, "l: dropout(p=0.5)", lambda x, p: F.dropout(x, 0.5, training=False)),
    Case("dropout-vector", VEC, "l: dropout(p=0.9)", lambda x, p: F.dropout(x, 0.9, training=False)),
    # batch norm: running statistics, never the batch's
    Case("batchnorm-image", IMAGE, "l: batchnorm", batchnorm("l")),
    Case("batchnorm-image-eps", IMAGE, "l: batchnorm(eps=0.1, momentum=0.5)", batchnorm("l", eps=0.1)),
    Case("batchnorm-vector", VEC, "l: batchnorm(eps=0.001)", batchnorm("l", eps=1e-3)),
    Case("conv-batchnorm-relu", IMAGE, "l: conv(6, k=3, p=1, bias=false) -> batchnorm -> relu",
         chain(conv("l.0", padding=1), batchnorm("l.1"), lambda x, p: F.relu(x))),
    # activations
    Case("relu", IMAGE, "l: relu", lambda x, p: F.relu(x)),
    Case("sigmoid", VEC, "l: sigmoid", lambda x, p: torch.sigmoid(x)),
    Case("tanh", SEQ, "l: tanh", lambda x, p: torch.tanh(x)),
    Case("leaky-relu", IMAGE, "l: leaky_relu", lambda x, p: F.leaky_relu(x, 0.01)),
    Case("leaky-relu-alpha", VEC, "l: leaky_relu(alpha=0.3)", lambda x, p: F.leaky_relu(x, 0.3)),
    Case("prelu-shared-image", IMAGE, "l: prelu", prelu_per_channel("l")),
    Case("prelu-shared-sequence", SEQ, "l: prelu(init=0.1)", prelu_per_channel("l")),
    Case("prelu-per-channel-image", IMAGE, "l: prelu(per_channel=true)", prelu_per_channel("l")),
    Case("prelu-per-channel-vector", VEC, "l: prelu(per_channel=true)", prelu_per_channel("l")),
    Case("maxout-image", IMAGE, "l: maxout(2)", maxout(2, 1)),
    Case("maxout-vector", VEC, "l: maxout(3)", maxout(3, 1)),
    Case("maxout-sequence", SEQ, "l: maxout(3)", maxout(3, 2)),
    Case("softmax-image", IMAGE, "l: softmax", lambda x, p: F.softmax(x, dim=1)),
    Case("softmax-vector", VEC, "l: softmax", lambda x, p: F.softmax(x, dim=1)),
    Case("softmax-sequence", SEQ, "l: softmax", lambda x, p: F.softmax(x, dim=2)),
    Case("relu6", IMAGE, "l: relu6", lambda x, p: F.relu6(x)),
    Case("hardsigmoid", IMAGE, "l: hardsigmoid", lambda x, p: F.hardsigmoid(x)),
    Case("hardswish", SEQ, "l: hardswish", lambda x, p: F.hardswish(x)),
    Case("silu", VEC, "l: silu", lambda x, p: F.silu(x)),
    Case("gelu", IMAGE, "l: gelu", lambda x, p: F.gelu(x)),
    Case("gelu-tanh", SEQ, "l: gelu(approximate=tanh)", lambda x, p: F.gelu(x, approximate="tanh")),
    Case("elu", IMAGE, "l: elu", lambda x, p: F.elu(x)),
    Case("elu-alpha", VEC, "l: elu(alpha=0.3)", lambda x, p: F.elu(x, 0.3)),
    Case("softplus", IMAGE, "l: softplus", lambda x, p: F.softplus(x)),
    Case("softplus-beta-threshold", VEC, "l: softplus(beta=2, threshold=1)", lambda x, p: F.softplus(x, 2, 1)),
    # per-sample norms, layer scale, stochastic depth, shuffles, adaptive pools
    Case("layernorm-vector", VEC, "l: layernorm", layer_norm("l", 12)),
    Case("layernorm-sequence", SEQ, "l: layernorm(eps=0.01)", layer_norm("l", 6, eps=0.01)),
    Case("layernorm-image", IMAGE, "l: layernorm(eps=1e-6)", layer_norm_2d("l", 1e-6)),
    Case("groupnorm-image", IMAGE, "l: groupnorm(2)", group_norm("l", 2)),
    Case("groupnorm-depthwise", ODD, "l: groupnorm(4, eps=0.001)", group_norm("l", 4, 1e-3)),
    Case("groupnorm-vector", VEC, "l: groupnorm(3)", group_norm("l", 3)),
    Case("scale-image", IMAGE, "l: scale", lambda x, p: x * p["l"]),
    Case("scale-sequence", SEQ, "l: scale(init=0.5)", lambda x, p: x * p["l"]),
    Case("drop-path", IMAGE, "l: drop_path(0.3)", lambda x, p: x),
    Case("channel-shuffle", IMAGE, "l: channel_shuffle(2)", lambda x, p: F.channel_shuffle(x, 2)),
    Case("adaptive-avgpool-divisible", IMAGE, "l: adaptive_avgpool(4)", lambda x, p: F.adaptive_avg_pool2d(x, 4)),
    Case("adaptive-avgpool-one", ODD, "l: adaptive_avgpool(1)", lambda x, p: F.adaptive_avg_pool2d(x, 1)),
    Case("adaptive-avgpool-uneven", ODD, "l: adaptive_avgpool([3, 5])", lambda x, p: F.adaptive_avg_pool2d(x, (3, 5))),
    Case("adaptive-avgpool-larger", ODD, "l: adaptive_avgpool([9, 2])", lambda x, p: F.adaptive_avg_pool2d(x, (9, 2))),
    Case("fc-sequence", SEQ, "l: fc(5)", linear("l")),
    Case("fc-sequence-no-bias", SEQ, "l: fc(5, bias=false)", linear("l")),
    # recurrent
    Case("lstm-sequences", SEQ, "l: lstm(7)", recurrent("lstm", "l", 6, 7, True)),
    Case("lstm-last", SEQ, "l: lstm(7, sequences=false)", recurrent("lstm", "l", 6, 7, False)),
    Case("lstm-stacked", SEQ, "a: lstm(7)\nb: lstm(4, sequences=false)",
         chain(recurrent("lstm", "a", 6, 7, True), recurrent("lstm", "b", 7, 4, False))),
    Case("rnn-sequences", SEQ, "l: rnn(7)", recurrent("rnn", "l", 6, 7, True)),
    Case("rnn-last", SEQ, "l: rnn(7, sequences=false)", recurrent("rnn", "l", 6, 7, False)),
    Case("lstm-fc", SEQ, "a: lstm(7, sequences=false)\nb: fc(3)",
         chain(recurrent("lstm", "a", 6, 7, False), linear("b"))),
    # merges
    Case("add", IMAGE, "a = x -> conv(3, k=1)\nb = x -> conv(3, k=1)\nadd(a, b)",
         conv_pair(lambda outs: outs[0] + outs[1])),
    Case("add-three", IMAGE, "a = x -> conv(3, k=1)\nb = x -> conv(3, k=1)\nc = x -> conv(3, k=1)\nadd(a, b, c)",
         conv_pair(lambda outs: outs[0] + outs[1] + outs[2])),
    Case("add-in-chain", IMAGE, "a = x -> conv(4, k=1)\nx -> relu -> add(a)",
         lambda x, p: F.relu(x) + conv("conv1")(x, p)),
    Case("residual", IMAGE, "residual { conv(4, k=3, p=1) -> relu }",
         lambda x, p: F.relu(conv("conv1", padding=1)(x, p)) + x),
    Case("concat-image", IMAGE, "a = x -> conv(3, k=1)\nb = x -> conv(2, k=1)\nconcat(a, b)",
         conv_pair(lambda outs: torch.cat(outs, dim=1))),
    Case("concat-vector", VEC, "a = x -> relu\nb = x -> tanh\nconcat(a, b)",
         lambda x, p: torch.cat([F.relu(x), torch.tanh(x)], dim=1)),
    Case("concat-sequence", SEQ, "a = x -> relu\nb = x -> lstm(3)\nconcat(a, b)",
         lambda x, p: torch.cat([F.relu(x), recurrent("lstm", "lstm1", 6, 3, True)(x, p)], dim=2)),
    Case("concat-block", IMAGE, "concat {\n branch { conv(3, k=1) }\n branch { maxpool(k=3, s=1, p=1) }\n}",
         lambda x, p: torch.cat([conv("branch1.conv1")(x, p), F.max_pool2d(x, 3, 1, 1)], dim=1)),
    # broadcasting merges: [C, 1, 1] against [C, H, W]; a lower rank is aligned from the last axis
    Case("mul-per-channel", IMAGE, "s = x -> global_avgpool -> conv(4, k=1) -> sigmoid\nmul(x, s)",
         lambda x, p: x * torch.sigmoid(conv("conv1")(F.adaptive_avg_pool2d(x, 1), p))),
    Case("mul-in-chain", IMAGE, "s = x -> global_maxpool\nx -> tanh -> mul(s)",
         lambda x, p: torch.tanh(x) * F.adaptive_max_pool2d(x, 1)),
    Case("add-broadcast", IMAGE, "s = x -> global_avgpool -> conv(4, k=1)\nadd(s, x)",
         lambda x, p: conv("conv1")(F.adaptive_avg_pool2d(x, 1), p) + x),
    Case("mul-lower-rank", SEQ, "s = x -> flatten -> fc(6)\nmul(x, s, x)",
         lambda x, p: x * linear("fc1")(torch.flatten(x, 1), p)[:, None, :] * x),
    Case("add-three-broadcast", IMAGE, "a = x -> global_avgpool\nb = x -> conv(1, k=1)\nadd(x, a, b)",
         lambda x, p: x + F.adaptive_avg_pool2d(x, 1) + conv("conv1")(x, p)),
    # pieces and crops
    Case("chunk-image", IMAGE, "a, b = x -> chunk(2)\nconcat(b, a)",
         lambda x, p: torch.cat(torch.chunk(x, 2, dim=1)[::-1], dim=1)),
    Case("chunk-sequence", SEQ, "a, b, c = x -> chunk(3)\nadd(a, c) -> mul(b)",
         lambda x, p: (lambda a, b, c: (a + c) * b)(*torch.chunk(x, 3, dim=2))),
    Case("split-vector", VEC, "a, b = x -> split([5, 7])\nb -> fc(5) -> add(a)",
         lambda x, p: linear("fc1")(torch.split(x, [5, 7], dim=1)[1], p) + x[:, :5]),
    Case("crop-even", IMAGE, "u = x -> conv(2, k=5)\ncrop(x, like=u)", lambda x, p: x[:, :, 2:6, 2:6]),
    # an odd surplus: the extra row and column are cut at the end
    Case("crop-odd", ODD, "u = x -> conv(2, k=[2, 4])\nx -> relu -> crop(like=u)",
         lambda x, p: F.relu(x)[:, :, 0:6, 1:5]),
]


def check_against_pytorch(tmp_path, case: Case, opset: int = DEFAULT_OPSET) -> None:
    x, y, params = export_and_run(tmp_path, case, opset)
    with torch.no_grad():
        expected = case.torch(torch.from_numpy(x), params).numpy()
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_matches_pytorch(tmp_path, case):
    check_against_pytorch(tmp_path, case)


# Cases that use the ONNX ops with a new version between opsets 18 and 22
# (pools, Resize, Conv, ConvTranspose, LSTM, RNN, Reshape, ReduceMax,
# Squeeze, Transpose, Identity, Dropout, Gelu), and a few that do not.
OTHER_OPSET_CASES = [c for c in CASES if c.id in {
    "conv-ceil-padded", "upconv-output-padding", "upsample-nearest", "upsample-bilinear",
    "maxpool-ceil-last-window-dropped", "avgpool-ceil-padded", "avgpool-ceil-padded-exclude", "global-avgpool",
    "global-maxpool", "batchnorm-image", "prelu-per-channel-image", "maxout-image", "softmax-sequence",
    "lstm-stacked", "rnn-last", "dropout-image", "add-three",
    # Gelu is an op from opset 20: composed before it
    "gelu", "gelu-tanh", "layernorm-image", "groupnorm-image", "adaptive-avgpool-uneven", "channel-shuffle"}]


@pytest.mark.parametrize("opset", [18, 22])
@pytest.mark.parametrize("case", OTHER_OPSET_CASES, ids=[c.id for c in OTHER_OPSET_CASES])
def test_layer_matches_pytorch_at_other_opsets(tmp_path, case, opset):
    check_against_pytorch(tmp_path, case, opset)


def without_value_info(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    graph = helper.make_graph(g.node, g.name, g.input, g.output, g.initializer)
    return helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_onnx_shape_inference_gives_the_checker_shapes(tmp_path, case):
    """ONNX's own shape rules, without our value_info, agree with the checker
    (round=ceil windows included, where ONNX's ceil_mode and PyTorch's differ)."""
    net, model = export(tmp_path, case)
    inferred = shape_inference.infer_shapes(without_value_info(model), strict_mode=True)
    found = {v.name: v.type.tensor_type for v in (*inferred.graph.value_info, *inferred.graph.output)}
    initializers = {t.name for t in model.graph.initializer}  # a scale layer's output is <layer>/out
    tensors = {n: layer_output(n, initializers) for n in net.analysis.order if n != net.input}
    got = {n: [d.dim_param or d.dim_value for d in found[t].shape.dim] if t in found else None
           for n, t in tensors.items()}
    assert got == {n: ["N", *net.analysis.shapes[n]] for n in got}
    assert {found[t].elem_type for t in tensors.values()} == {TensorProto.FLOAT}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_model_passes_full_check(tmp_path, case):
    _, model = export(tmp_path, case)
    onnx.checker.check_model(model, full_check=True)


def test_every_layer_kind_is_covered(tmp_path):
    from i2dl_dsl.layers.base import REGISTRY

    kinds = set()
    for case in CASES:
        net = compiled(tmp_path, case)
        kinds |= {layer_node(net.graph, n).layer.kind for n in net.analysis.order if n != net.input}
    assert set(REGISTRY) - kinds == set()
