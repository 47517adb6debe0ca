"""Every layer kind's shape rule and parameter tensors against PyTorch.

Each case declares one layer in a one-layer network and builds the
equivalent torch.nn module. The module runs on a real tensor; its output
shape (without the batch axis) must equal our inferred shape, and its
`named_parameters()` / `named_buffers()` must equal our `params` /
`buffers` tensor by tensor, in PyTorch's layouts. Seeded random sweeps cover
the sliding-window layers beyond the hand-picked cases.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.diagnostics import CompileError  # noqa: E402

BATCH = 2


def declare(tmp_path, input_dims: str, layer: str, name: str = "layer"):
    """Check a network holding one layer, labelled `under_test`; return the analysis."""
    path = tmp_path / f"{name}.net"
    path.write_text(f"network T {{\n    input x[{input_dims}]\n    under_test: {layer}\n}}\n")
    return check(path).analysis


def ours(tmp_path, input_dims: str, layer: str, name: str = "layer"):
    a = declare(tmp_path, input_dims, layer, name)
    return a.shapes["under_test"], a.params["under_test"], a.buffers["under_test"]


def reference(module: nn.Module, dims: tuple[int, ...]):
    """What PyTorch says: output shape without the batch, parameter and buffer shapes."""
    x = torch.randn(BATCH, *dims)
    module.eval()
    with torch.no_grad():
        y = module(x)
    params = {n: tuple(p.shape) for n, p in module.named_parameters()}
    # num_batches_tracked is an int64 step counter, not a running statistic.
    buffers = {n: tuple(b.shape) for n, b in module.named_buffers() if not n.endswith("num_batches_tracked")}
    return tuple(y.shape[1:]), params, buffers


def dims_of(text: str) -> tuple[int, ...]:
    return tuple(int(d.split("=")[-1]) for d in text.split(","))


class Padded(nn.Module):
    """Explicit (possibly uneven) zero padding, then a module: `same` with stride > 1."""

    def __init__(self, pads: tuple[int, int, int, int], inner: nn.Module):
        super().__init__()
        self.pads = pads  # left, right, top, bottom as F.pad takes them
        self.inner = inner

    def forward(self, x):
        return self.inner(F.pad(x, self.pads))

    def named_parameters(self, *args, **kwargs):
        return self.inner.named_parameters(*args, **kwargs)


class Unwrapped(nn.Module):
    """A module whose parameter names are those of the wrapped recurrent layer."""

    def __init__(self, rnn: nn.Module, last: bool):
        super().__init__()
        self.rnn = rnn
        self.last = last

    def forward(self, x):
        out = self.rnn(x)[0]
        return out[:, -1] if self.last else out

    def named_parameters(self, *args, **kwargs):
        return self.rnn.named_parameters(*args, **kwargs)


@dataclass(frozen=True)
class Case:
    id: str
    input: str
    layer: str
    torch: Callable[[], nn.Module]


def same_pads(n: tuple[int, int], k, s, d=(1, 1)) -> tuple[int, int, int, int]:
    """The documented `same`: output ceil(N/S); an odd extra pixel at the end."""
    pads = []
    for i in range(2):
        keff = d[i] * (k[i] - 1) + 1
        total = max((-(-n[i] // s[i]) - 1) * s[i] + keff - n[i], 0)
        pads.append((total // 2, total - total // 2))
    return (*pads[1], *pads[0])


CASES = [
    # ---- conv
    Case("conv", "3, 16, 16", "conv(8, k=3)", lambda: nn.Conv2d(3, 8, 3)),
    Case("conv-stride-padding-floor", "3, 16, 16", "conv(8, k=3, s=2, p=1, round=floor)",
         lambda: nn.Conv2d(3, 8, 3, 2, 1)),
    Case("conv-pairs", "3, 16, 17", "conv(8, k=[3, 5], s=[1, 2], p=[1, 2])",
         lambda: nn.Conv2d(3, 8, (3, 5), (1, 2), (1, 2))),
    Case("conv-dilation", "3, 16, 16", "conv(6, k=3, d=2, p=2)", lambda: nn.Conv2d(3, 6, 3, padding=2, dilation=2)),
    Case("conv-dilation-pairs", "3, 20, 16", "conv(6, k=[3, 2], d=[3, 2], p=[3, 1])",
         lambda: nn.Conv2d(3, 6, (3, 2), padding=(3, 1), dilation=(3, 2))),
    Case("conv-groups", "4, 8, 8", "conv(8, k=3, groups=4)", lambda: nn.Conv2d(4, 8, 3, groups=4)),
    Case("conv-depthwise", "6, 8, 8", "conv(6, k=3, p=1, groups=6)", lambda: nn.Conv2d(6, 6, 3, padding=1, groups=6)),
    Case("conv-no-bias", "3, 8, 8", "conv(5, k=1, bias=false)", lambda: nn.Conv2d(3, 5, 1, bias=False)),
    Case("conv-valid", "3, 9, 7", "conv(4, k=3, p=valid)", lambda: nn.Conv2d(3, 4, 3, padding="valid")),
    Case("conv-same-odd", "3, 9, 7", "conv(4, k=3, p=same)", lambda: nn.Conv2d(3, 4, 3, padding="same")),
    # PyTorch also puts the odd extra pixel of `same` at the end.
    Case("conv-same-even", "3, 9, 7", "conv(4, k=4, p=same)", lambda: nn.Conv2d(3, 4, 4, padding="same")),
    Case("conv-same-dilated", "3, 9, 7", "conv(4, k=[3, 2], d=[2, 3], p=same)",
         lambda: nn.Conv2d(3, 4, (3, 2), padding="same", dilation=(2, 3))),
    Case("conv-same-stride2", "3, 9, 8", "conv(4, k=3, s=2, p=same)",
         lambda: Padded(same_pads((9, 8), (3, 3), (2, 2)), nn.Conv2d(3, 4, 3, 2))),
    Case("conv-same-stride3-even", "3, 10, 11", "conv(4, k=4, s=3, p=same)",
         lambda: Padded(same_pads((10, 11), (4, 4), (3, 3)), nn.Conv2d(3, 4, 4, 3))),
    Case("conv-same-stride-pairs-dilated", "3, 13, 10", "conv(4, k=[3, 2], s=[2, 3], d=[2, 1], p=same)",
         lambda: Padded(same_pads((13, 10), (3, 2), (2, 3), (2, 1)), nn.Conv2d(3, 4, (3, 2), (2, 3), dilation=(2, 1)))),
    Case("conv-same-kernel-smaller-than-stride", "3, 10, 10", "conv(4, k=1, s=3, p=same)",
         lambda: Padded(same_pads((10, 10), (1, 1), (3, 3)), nn.Conv2d(3, 4, 1, 3))),
    Case("conv-full", "3, 6, 6", "conv(4, k=3, p=full)", lambda: nn.Conv2d(3, 4, 3, padding=2)),
    Case("conv-full-dilated", "3, 6, 6", "conv(4, k=3, d=2, p=full)", lambda: nn.Conv2d(3, 4, 3, padding=4, dilation=2)),
    Case("conv-floor", "3, 10, 10", "conv(4, k=3, s=2, round=floor)", lambda: nn.Conv2d(3, 4, 3, 2)),
    # ---- upconv
    Case("upconv", "4, 5, 5", "upconv(3, k=2, s=2)", lambda: nn.ConvTranspose2d(4, 3, 2, 2)),
    Case("upconv-padding", "4, 5, 6", "upconv(3, k=4, s=2, p=1)", lambda: nn.ConvTranspose2d(4, 3, 4, 2, 1)),
    Case("upconv-output-padding", "4, 5, 6", "upconv(3, k=3, s=2, p=1, output_padding=1)",
         lambda: nn.ConvTranspose2d(4, 3, 3, 2, 1, output_padding=1)),
    Case("upconv-pairs", "4, 5, 6", "upconv(3, k=[3, 2], s=[3, 2], p=[1, 0], output_padding=[2, 1])",
         lambda: nn.ConvTranspose2d(4, 3, (3, 2), (3, 2), (1, 0), output_padding=(2, 1))),
    Case("upconv-dilation", "4, 5, 6", "upconv(3, k=3, d=2, output_padding=1)",
         lambda: nn.ConvTranspose2d(4, 3, 3, output_padding=1, dilation=2)),
    Case("upconv-groups", "4, 5, 5", "upconv(6, k=3, s=2, groups=2)", lambda: nn.ConvTranspose2d(4, 6, 3, 2, groups=2)),
    Case("upconv-no-bias", "4, 5, 5", "upconv(6, k=2, s=2, bias=false)",
         lambda: nn.ConvTranspose2d(4, 6, 2, 2, bias=False)),
    # ---- upsample
    Case("upsample-nearest", "3, 5, 7", "upsample", lambda: nn.Upsample(scale_factor=2, mode="nearest")),
    Case("upsample-nearest-pair", "3, 5, 7", "upsample(scale=[2, 3])",
         lambda: nn.Upsample(scale_factor=(2, 3), mode="nearest")),
    Case("upsample-bilinear", "3, 5, 7", "upsample(scale=3, mode=bilinear)",
         lambda: nn.Upsample(scale_factor=3, mode="bilinear", align_corners=False)),
    Case("upsample-bilinear-pair", "3, 5, 7", "upsample(scale=[3, 2], mode=bilinear)",
         lambda: nn.Upsample(scale_factor=(3, 2), mode="bilinear", align_corners=False)),
    # ---- pools
    Case("maxpool", "3, 16, 16", "maxpool(k=2)", lambda: nn.MaxPool2d(2)),
    Case("maxpool-stride-padding", "3, 16, 16", "maxpool(k=3, s=2, p=1, round=floor)", lambda: nn.MaxPool2d(3, 2, 1)),
    Case("maxpool-pairs", "3, 16, 15", "maxpool(k=[2, 3], s=[2, 3])", lambda: nn.MaxPool2d((2, 3), (2, 3))),
    Case("maxpool-ceil", "3, 16, 16", "maxpool(k=3, s=2, round=ceil)", lambda: nn.MaxPool2d(3, 2, ceil_mode=True)),
    Case("maxpool-ceil-padding", "3, 16, 16", "maxpool(k=3, s=2, p=1, round=ceil)",
         lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
    # The last window would start in the right padding: PyTorch drops it.
    Case("maxpool-ceil-drops-window-in-padding", "1, 5, 5", "maxpool(k=2, s=2, p=1, round=ceil)",
         lambda: nn.MaxPool2d(2, 2, 1, ceil_mode=True)),
    Case("maxpool-same-stride", "3, 9, 10", "maxpool(k=3, s=2, p=same)",
         lambda: Padded(same_pads((9, 10), (3, 3), (2, 2)), nn.MaxPool2d(3, 2))),
    Case("avgpool", "3, 16, 16", "avgpool(k=2, s=2)", lambda: nn.AvgPool2d(2, 2)),
    Case("avgpool-ceil-padding", "3, 16, 17", "avgpool(k=3, s=2, p=1, round=ceil)",
         lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True)),
    Case("avgpool-ceil-drops-window-in-padding", "1, 7, 7", "avgpool(k=4, s=3, p=2, round=ceil)",
         lambda: nn.AvgPool2d(4, 3, 2, ceil_mode=True)),
    Case("avgpool-exclude-pad", "3, 8, 8", "avgpool(k=3, s=1, p=1, count_include_pad=false)",
         lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False)),
    Case("global-avgpool", "5, 7, 3", "global_avgpool", lambda: nn.AdaptiveAvgPool2d(1)),
    Case("global-maxpool", "5, 7, 3", "global_maxpool", lambda: nn.AdaptiveMaxPool2d(1)),
    # ---- flatten, fc, dropout, batchnorm
    Case("flatten-image", "3, 4, 5", "flatten", lambda: nn.Flatten()),
    Case("flatten-sequence", "6, 7", "flatten", lambda: nn.Flatten()),
    Case("fc", "12", "fc(5)", lambda: nn.Linear(12, 5)),
    Case("fc-no-bias", "12", "fc(5, bias=false)", lambda: nn.Linear(12, 5, bias=False)),
    Case("dropout-image", "3, 4, 5", "dropout(p=0.3)", lambda: nn.Dropout(0.3)),
    Case("dropout-vector", "9", "dropout", lambda: nn.Dropout(0.5)),
    Case("batchnorm-image", "6, 4, 5", "batchnorm", lambda: nn.BatchNorm2d(6)),
    Case("batchnorm-vector", "9", "batchnorm(eps=1e-3, momentum=0.2)", lambda: nn.BatchNorm1d(9, 1e-3, 0.2)),
    # ---- activations
    Case("relu", "3, 4, 5", "relu", lambda: nn.ReLU()),
    Case("sigmoid", "9", "sigmoid", lambda: nn.Sigmoid()),
    Case("tanh", "6, 7", "tanh", lambda: nn.Tanh()),
    Case("leaky-relu", "3, 4, 5", "leaky_relu(alpha=0.2)", lambda: nn.LeakyReLU(0.2)),
    Case("softmax-image", "3, 4, 5", "softmax", lambda: nn.Softmax(dim=1)),
    Case("softmax-vector", "9", "softmax", lambda: nn.Softmax(dim=1)),
    Case("softmax-sequence", "6, 7", "softmax", lambda: nn.Softmax(dim=2)),
    Case("prelu-shared", "3, 4, 5", "prelu", lambda: nn.PReLU()),
    Case("prelu-shared-sequence", "6, 7", "prelu", lambda: nn.PReLU()),
    Case("prelu-per-channel", "3, 4, 5", "prelu(per_channel=true)", lambda: nn.PReLU(3)),
    Case("prelu-per-feature", "9", "prelu(per_channel=true, init=0.1)", lambda: nn.PReLU(9, 0.1)),
    # ---- recurrent
    Case("lstm-sequences", "6, 7", "lstm(5)", lambda: Unwrapped(nn.LSTM(7, 5, batch_first=True), last=False)),
    Case("lstm-last", "6, 7", "lstm(5, sequences=false)", lambda: Unwrapped(nn.LSTM(7, 5, batch_first=True), last=True)),
    Case("rnn-sequences", "6, 7", "rnn(4)", lambda: Unwrapped(nn.RNN(7, 4, batch_first=True), last=False)),
    Case("rnn-last", "6, 7", "rnn(4, sequences=false)", lambda: Unwrapped(nn.RNN(7, 4, batch_first=True), last=True)),
    Case("lstm-named-time-axis", "T=6, 7", "lstm(3)", lambda: Unwrapped(nn.LSTM(7, 3, batch_first=True), last=False)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_layer_matches_torch(tmp_path, case):
    shape, params, buffers = ours(tmp_path, case.input, case.layer)
    expected = reference(case.torch(), dims_of(case.input))
    assert (shape, params, buffers) == expected


# ----------------------------------------------------------------- maxout


def maxout_reference(x, pieces: int):
    """Maxout over groups of `pieces` consecutive channels (features for
    vectors and sequences): split the axis into (units, pieces), take the max."""
    axis = 2 if x.dim() == 3 else 1
    shape = list(x.shape)
    grouped = x.reshape(*shape[:axis], shape[axis] // pieces, pieces, *shape[axis + 1:])
    return grouped.amax(dim=axis + 1)


@pytest.mark.parametrize("dims, pieces", [("6, 4, 5", 2), ("6, 4, 5", 3), ("12", 4), ("5, 9", 3)])
def test_maxout_matches_reshape_max(tmp_path, dims, pieces):
    shape, params, buffers = ours(tmp_path, dims, f"maxout({pieces})")
    x = torch.randn(BATCH, *dims_of(dims))
    assert shape == tuple(maxout_reference(x, pieces).shape[1:])
    assert params == {} and buffers == {}


def test_maxout_rejects_channels_not_divisible_by_pieces(tmp_path):
    with pytest.raises(CompileError):
        declare(tmp_path, "6, 4, 5", "maxout(4)")


# ----------------------------------------------------------------- merges


def merged(tmp_path, input_dims: str, left: str, right: str, merge: str):
    path = tmp_path / "merge.net"
    path.write_text(f"network M {{\n    input x[{input_dims}]\n    a = x -> {left}\n    b = x -> {right}\n"
                    f"    joined: {merge}(a, b)\n}}\n")
    a = check(path).analysis
    return a.shapes["joined"], a.params["joined"]


def test_add_of_images_keeps_the_shape(tmp_path):
    shape, params = merged(tmp_path, "3, 8, 8", "conv(4, k=3, p=1)", "conv(4, k=1)", "add")
    x = torch.randn(BATCH, 3, 8, 8)
    expected = nn.Conv2d(3, 4, 3, padding=1)(x) + nn.Conv2d(3, 4, 1)(x)
    assert shape == tuple(expected.shape[1:]) and params == {}


def test_add_of_vectors_keeps_the_shape(tmp_path):
    shape, _ = merged(tmp_path, "6", "fc(4)", "fc(4)", "add")
    assert shape == (4,)


@pytest.mark.parametrize("dims, left, right, make", [
    ("3, 8, 8", "conv(4, k=1)", "conv(6, k=3, p=1)",
     lambda x: torch.cat([nn.Conv2d(3, 4, 1)(x), nn.Conv2d(3, 6, 3, padding=1)(x)], 1)),
    ("7", "fc(2)", "fc(5)", lambda x: torch.cat([nn.Linear(7, 2)(x), nn.Linear(7, 5)(x)], 1)),
    ("6, 7", "lstm(3)", "rnn(4)",
     lambda x: torch.cat([nn.LSTM(7, 3, batch_first=True)(x)[0], nn.RNN(7, 4, batch_first=True)(x)[0]], -1)),
], ids=["images", "vectors", "sequences"])
def test_concat_matches_torch_cat(tmp_path, dims, left, right, make):
    shape, params = merged(tmp_path, dims, left, right, "concat")
    assert shape == tuple(make(torch.randn(BATCH, *dims_of(dims))).shape[1:])
    assert params == {}


@pytest.mark.parametrize("dims, left, right, merge", [
    ("3, 8, 8", "conv(4, k=1)", "conv(4, k=3)", "add"),
    ("3, 8, 8", "conv(4, k=1)", "conv(5, k=1)", "add"),
    ("3, 8, 8", "conv(4, k=1)", "conv(4, k=3)", "concat"),
    ("3, 8, 8", "conv(4, k=1)", "flatten", "concat"),
    ("6, 7", "lstm(3)", "lstm(3, sequences=false)", "concat"),
])
def test_merge_rejects_what_torch_rejects(tmp_path, dims, left, right, merge):
    x = torch.randn(BATCH, *dims_of(dims))
    tensors = {"conv(4, k=1)": nn.Conv2d(3, 4, 1)(x), "conv(4, k=3)": nn.Conv2d(3, 4, 3)(x),
               "conv(5, k=1)": nn.Conv2d(3, 5, 1)(x), "flatten": x.flatten(1)} if len(dims_of(dims)) == 3 else \
        {"lstm(3)": nn.LSTM(7, 3, batch_first=True)(x)[0],
         "lstm(3, sequences=false)": nn.LSTM(7, 3, batch_first=True)(x)[0][:, -1]}
    with pytest.raises(RuntimeError):
        (torch.add if merge == "add" else lambda a, b: torch.cat([a, b], 1))(tensors[left], tensors[right])
    with pytest.raises(CompileError):
        merged(tmp_path, dims, left, right, merge)


# ----------------------------------------------------------------- rejections


@pytest.mark.parametrize("dims, layer, make", [
    ("4, 8, 8", "conv(6, k=3, groups=4)", lambda: nn.Conv2d(4, 6, 3, groups=4)),
    ("6, 8, 8", "conv(6, k=3, groups=4)", lambda: nn.Conv2d(6, 6, 3, groups=4)),
    ("4, 5, 5", "upconv(3, k=3, s=2, groups=2)", lambda: nn.ConvTranspose2d(4, 3, 3, 2, groups=2)),
    ("4, 5, 5", "upconv(3, k=3, s=2, output_padding=2)", lambda: nn.ConvTranspose2d(4, 3, 3, 2, output_padding=2)),
    ("4, 5, 5", "maxpool(k=3, p=2)", lambda: nn.MaxPool2d(3, padding=2)),
    ("4, 5, 5", "avgpool(k=2, p=2)", lambda: nn.AvgPool2d(2, padding=2)),
    ("4, 5, 5", "conv(3, k=7)", lambda: nn.Conv2d(4, 3, 7)),
    ("4, 5, 5", "upconv(3, k=1, p=3)", lambda: nn.ConvTranspose2d(4, 3, 1, padding=3)),
    ("4, 5, 5", "fc(3)", lambda: nn.Linear(4, 3)),
    ("6, 7", "conv(3, k=1)", lambda: nn.Conv2d(6, 3, 1)),
])
def test_layer_rejects_what_torch_rejects(tmp_path, dims, layer, make):
    with pytest.raises((RuntimeError, ValueError)):
        make()(torch.randn(BATCH, *dims_of(dims)))
    with pytest.raises(CompileError):
        declare(tmp_path, dims, layer)


@pytest.mark.parametrize("dims, layer, make", [
    ("1, 4, 4", "maxpool(k=5, s=2, round=floor)", lambda: nn.MaxPool2d(5, 2)),
    ("1, 4, 4", "conv(1, k=3, d=2, s=2, round=floor)", lambda: nn.Conv2d(1, 1, 3, 2, dilation=2)),
])
def test_window_wider_than_the_input_is_rejected_with_round_floor(tmp_path, dims, layer, make):
    with pytest.raises(RuntimeError):
        make()(torch.randn(BATCH, *dims_of(dims)))
    with pytest.raises(CompileError):
        declare(tmp_path, dims, layer)


@pytest.mark.parametrize("dims, layer, size", [
    ("3, 16, 16", "conv(4, k=3, s=2, p=1)", None),    # (16 - 3 + 2)/2 + 1 = 8.5
    ("3, 17, 17", "conv(4, k=3, s=2, p=1)", 9),       # (17 - 3 + 2)/2 + 1 = 9
    ("3, 16, 16", "maxpool(k=3, s=2)", None),         # (16 - 3)/2 + 1 = 7.5
    ("3, 15, 15", "maxpool(k=3, s=2)", 7),            # (15 - 3)/2 + 1 = 7
])
def test_round_exact_accepts_only_whole_outputs(tmp_path, dims, layer, size):
    if size is not None:
        assert declare(tmp_path, dims, layer).shapes["under_test"][1:] == (size, size)
    else:
        with pytest.raises(CompileError):
            declare(tmp_path, dims, layer)


@pytest.mark.parametrize("dims, layer", [
    ("2, 3, 3", "maxpool(k=2, s=3, p=same)"),     # ceil(3/3) = 1; (3 - 2)/3 + 1 is not whole
    ("2, 11, 11", "conv(2, k=1, s=3, p=same)"),   # ceil(11/3) = 4; (11 - 1)/3 + 1 is not whole
])
def test_same_padding_gives_ceil_n_over_s_when_the_kernel_is_smaller_than_the_stride(tmp_path, dims, layer):
    n = dims_of(dims)[1]
    assert declare(tmp_path, dims, layer).shapes["under_test"][1:] == (-(-n // 3), -(-n // 3))


# ----------------------------------------------------------------- random sweeps


def _pair(v) -> str:
    return f"[{v[0]}, {v[1]}]"


def _explicit_pads(mode, p, n, k, s, d):
    if mode == "int":
        return (p[1], p[1], p[0], p[0])
    if mode == "valid":
        return (0, 0, 0, 0)
    if mode == "full":
        e = [d[i] * (k[i] - 1) for i in range(2)]
        return (e[1], e[1], e[0], e[0])
    return same_pads(n, k, s, d)


def _conv_configs(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        groups = rng.choice([1, 1, 2, 3])
        cin, cout = groups * rng.randint(1, 3), groups * rng.randint(1, 3)
        n = (rng.randint(4, 24), rng.randint(4, 24))
        k = (rng.randint(1, 5), rng.randint(1, 5))
        s = (rng.randint(1, 3), rng.randint(1, 3))
        d = (rng.randint(1, 3), rng.randint(1, 2))
        mode = rng.choice(["int", "int", "same", "valid", "full"])
        p = (rng.randint(0, 3), rng.randint(0, 3))
        yield cin, cout, groups, n, k, s, d, mode, p, rng.choice([True, False])


def test_conv_random_sweep_matches_torch(tmp_path):
    """round=floor is PyTorch's own rounding; every padding mode is made
    explicit with F.pad so that stride > 1 with `same` is covered."""
    compared = 0
    for index, (cin, cout, groups, n, k, s, d, mode, p, bias) in enumerate(_conv_configs(150, seed=7)):
        conv = nn.Conv2d(cin, cout, k, s, dilation=d, groups=groups, bias=bias)
        pads = _explicit_pads(mode, p, n, k, s, d)
        try:
            expected = reference(Padded(pads, conv), (cin, *n))
        except RuntimeError:
            continue  # the window does not fit: covered by the rejection tests
        padding = _pair(p) if mode == "int" else mode
        layer = (f"conv({cout}, k={_pair(k)}, s={_pair(s)}, p={padding}, d={_pair(d)}, groups={groups}, "
                 f"bias={str(bias).lower()}, round=floor)")
        assert ours(tmp_path, f"{cin}, {n[0]}, {n[1]}", layer, f"c{index}") == expected, layer
        compared += 1
    assert compared > 100


def test_conv_round_ceil_sweep_matches_torch_ceil_mode(tmp_path):
    """Conv2d has no ceil_mode; its output size under PyTorch's ceil_mode rule
    is that of a max pool with the same window, stride, padding and dilation."""
    compared = 0
    for index, (cin, cout, groups, n, k, s, d, _, p, _) in enumerate(_conv_configs(150, seed=8)):
        p = (min(p[0], k[0] // 2), min(p[1], k[1] // 2))  # max_pool2d allows at most half the kernel
        try:
            pooled = F.max_pool2d(torch.zeros(1, 1, *n), k, s, p, d, ceil_mode=True)
        except RuntimeError:
            continue
        layer = f"conv({cout}, k={_pair(k)}, s={_pair(s)}, p={_pair(p)}, d={_pair(d)}, groups={groups}, round=ceil)"
        shape, _, _ = ours(tmp_path, f"{cin}, {n[0]}, {n[1]}", layer, f"c{index}")
        assert shape == (cout, *pooled.shape[2:]), layer
        compared += 1
    assert compared > 100


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_pool_random_sweep_matches_torch(tmp_path, kind):
    rng = random.Random(11 if kind == "maxpool" else 12)
    fn = F.max_pool2d if kind == "maxpool" else F.avg_pool2d
    compared = 0
    for index in range(150):
        n = (rng.randint(2, 20), rng.randint(2, 20))
        k = (rng.randint(1, 5), rng.randint(1, 5))
        s = (rng.randint(1, 4), rng.randint(1, 4)) if rng.random() < 0.7 else None
        p = (rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2))
        ceil = rng.choice([True, False])
        try:
            expected = fn(torch.zeros(1, 2, *n), k, s or k, p, ceil_mode=ceil)
        except RuntimeError:
            continue
        stride = f", s={_pair(s)}" if s else ""
        layer = f"{kind}(k={_pair(k)}{stride}, p={_pair(p)}, round={'ceil' if ceil else 'floor'})"
        assert ours(tmp_path, f"2, {n[0]}, {n[1]}", layer, f"p{index}") == (tuple(expected.shape[1:]), {}, {}), layer
        compared += 1
    assert compared > 100


def test_pool_same_padding_sweep_matches_explicit_padding(tmp_path):
    rng = random.Random(13)
    for index in range(60):
        n = (rng.randint(3, 20), rng.randint(3, 20))
        k = (rng.randint(1, 5), rng.randint(1, 5))
        s = (rng.randint(1, 3), rng.randint(1, 3))
        pads = same_pads(n, k, s)
        if max(pads) > min(k) // 2:
            continue  # a pool pads at most half its window
        expected = F.max_pool2d(F.pad(torch.zeros(1, 2, *n), pads), k, s)
        layer = f"maxpool(k={_pair(k)}, s={_pair(s)}, p=same)"
        assert ours(tmp_path, f"2, {n[0]}, {n[1]}", layer, f"p{index}")[0] == tuple(expected.shape[1:]), layer


def test_upconv_random_sweep_matches_torch(tmp_path):
    rng = random.Random(17)
    accepted = 0
    for index in range(150):
        groups = rng.choice([1, 1, 2])
        cin, cout = groups * rng.randint(1, 3), groups * rng.randint(1, 3)
        n = (rng.randint(1, 10), rng.randint(1, 10))
        k = (rng.randint(1, 5), rng.randint(1, 5))
        s = (rng.randint(1, 3), rng.randint(1, 3))
        d = (rng.randint(1, 3), rng.randint(1, 2))
        p = (rng.randint(0, 3), rng.randint(0, 3))
        op = (rng.randint(0, 2), rng.randint(0, 2))
        bias = rng.choice([True, False])
        layer = (f"upconv({cout}, k={_pair(k)}, s={_pair(s)}, p={_pair(p)}, output_padding={_pair(op)}, "
                 f"d={_pair(d)}, groups={groups}, bias={str(bias).lower()})")
        try:
            expected = reference(nn.ConvTranspose2d(cin, cout, k, s, p, op, groups, bias, d), (cin, *n))
            if 0 in expected[0]:
                raise ValueError("PyTorch returns an empty tensor")
        except (RuntimeError, ValueError):
            with pytest.raises(CompileError):
                ours(tmp_path, f"{cin}, {n[0]}, {n[1]}", layer, f"u{index}")
            continue
        assert ours(tmp_path, f"{cin}, {n[0]}, {n[1]}", layer, f"u{index}") == expected, layer
        accepted += 1
    assert accepted > 50
