"""Gradients emitted by i2dl_dsl.autodiff, checked against finite differences
(every rule of the table) and against PyTorch autograd (a whole small CNN)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from onnx.reference.ops import op_conv_transpose, op_erf, op_max_pool

from i2dl_dsl.autodiff import RULES, MissingGradient, add_gradients

OPSET = 21
DOC = "models/test.net:7:5: layer(...)"


@dataclass(frozen=True)
class Const:
    """An operand stored as an initializer: not fed, not differentiated."""

    value: np.ndarray


@dataclass
class Case:
    """One op with representative attributes; loss = Σ_i ReduceSum(y_i · r_i)."""

    op: str
    args: list  # np.ndarray: a fed input (float ones are differentiated); Const; None: an absent input
    attrs: dict = field(default_factory=dict)
    outputs: int = 1
    use: tuple[int, ...] | None = None  # the outputs the loss reads (default: every float one)
    batch: int | None = 0  # the fed argument whose first axis is the symbolic 'N'


class ConvTranspose(op_conv_transpose.ConvTranspose):
    """The reference ConvTranspose (onnx 1.23) slices a grouped weight by
    output channels; given the same weight as a block-diagonal dense one, it is right."""

    def _run(self, X, W, B=None, group=None, **attrs):  # noqa: N803 - the reference's names
        if not group or group == 1:
            return super()._run(X, W, B, group=group, **attrs)
        per_in, per_out = W.shape[0] // group, W.shape[1]
        dense = np.zeros((W.shape[0], per_out * group, *W.shape[2:]), W.dtype)
        for k in range(group):
            dense[k * per_in:(k + 1) * per_in, k * per_out:(k + 1) * per_out] = W[k * per_in:(k + 1) * per_in]
        return super()._run(X, dense, B, group=1, **attrs)


class MaxPool(op_max_pool.MaxPool):
    """The reference MaxPool (onnx 1.23) reports wrong Indices at stride 1;
    onnxruntime's (float64 works there) are the ones the spec describes."""

    def _run(self, x, **attrs):
        if len(self.onnx_node.output) < 2:
            return super()._run(x, **attrs)
        import onnxruntime
        node = helper.make_node("MaxPool", ["x"], ["y", "i"], **{k: v for k, v in attrs.items() if v is not None})
        elem = helper.np_dtype_to_tensor_dtype(x.dtype)
        infos = [helper.make_tensor_value_info(n, t, None) for n, t in (("y", elem), ("i", TensorProto.INT64))]
        model = _model([node], [helper.make_tensor_value_info("x", elem, x.shape)], infos, [])
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return tuple(session.run(None, {"x": x}))


class Erf(op_erf.Erf):
    """The reference Erf (onnx 1.23) rounds every value to float32."""

    def _run(self, x):
        import math

        return (np.vectorize(math.erf, otypes=[x.dtype])(x),)


class Gelu(OpRun):
    """The reference Gelu (onnx 1.23) expands to its function body, whose Erf rounds to float32."""

    op_domain = ""

    def _run(self, x, approximate="none"):
        import math

        if approximate == "tanh":
            return (0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),)
        return (0.5 * x * (1 + np.vectorize(math.erf, otypes=[x.dtype])(x / math.sqrt(2))),)


def evaluator(model: onnx.ModelProto) -> ReferenceEvaluator:
    return ReferenceEvaluator(model, new_ops=[ConvTranspose, MaxPool, Erf, Gelu])


rng = np.random.default_rng(0)


def r(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def pos(*shape: int) -> np.ndarray:
    return rng.uniform(0.5, 2.0, shape)


def ints(*values) -> Const:
    return Const(np.array(values, dtype=np.int64))


def c(op: str, *args, outputs: int = 1, use=None, batch: int | None = 0, id: str = "", **attrs):
    case = Case(op, list(args), attrs, outputs, use, batch)
    return pytest.param(case, id=f"{op}-{id}" if id else op)


CASES = [
    c("Identity", r(2, 3)), c("Neg", r(2, 3)), c("Cast", r(2, 3), to=TensorProto.DOUBLE),
    c("Abs", r(2, 3)), c("Exp", r(2, 3)), c("Log", pos(2, 3)), c("Sqrt", pos(2, 3)),
    c("Reciprocal", pos(2, 3)), c("Relu", r(2, 3, 4)), c("LeakyRelu", r(2, 3), alpha=0.2),
    c("Sigmoid", r(2, 3)), c("Tanh", r(2, 3)), c("Softplus", r(2, 3)),
    c("HardSigmoid", r(2, 3, 4) * 3, alpha=1 / 6, beta=0.5, id="torch"), c("HardSigmoid", r(2, 3) * 2, id="default"),
    c("HardSwish", r(3, 4, 4) * 3), c("Elu", r(2, 3, 4), alpha=0.7), c("Erf", r(2, 3)),
    c("Gelu", r(2, 3, 4) * 2, id="exact"), c("Gelu", r(2, 3, 4) * 2, approximate="tanh", id="tanh"),
    c("LayerNormalization", r(2, 3, 4), pos(4), r(4), epsilon=1e-3, id="last-axis"),
    c("LayerNormalization", r(2, 3, 4), r(3, 4), r(3, 4), axis=1, id="axis-1"),
    c("LayerNormalization", r(2, 3, 4), r(1), axis=-2, id="broadcast-scale-no-bias"),
    c("Clip", r(3, 4), np.array(-0.5), np.array(0.6), id="min-max"),
    c("Clip", r(3, 4), None, Const(np.array(0.3)), id="max-only"), c("Clip", r(3, 4), id="no-bounds"),
    c("Add", r(2, 3, 4), r(4), id="bcast-last"), c("Add", r(2, 3, 4), r(3, 1), id="bcast-inner"),
    c("Add", r(4), r(2, 3, 4), batch=1, id="bcast-first"), c("Add", r(2, 3), r(2, 3), id="same"),
    c("Sub", r(2, 3, 4), r(1, 4)), c("Mul", r(2, 3, 4), r(3, 1), id="bcast"),
    c("Mul", r(2, 3, 4, 4), r(2, 3, 1, 1), id="bcast-per-channel"), c("Mul", r(2, 3), r(), id="scalar"),
    c("Div", r(2, 3, 4), pos(3, 1), id="bcast"), c("Div", r(2, 3), pos(2, 3), id="same"),
    c("Pow", pos(2, 3), Const(np.array(3.0)), id="const-exponent"),
    c("Pow", pos(2, 3), ints(2).value.reshape(()), id="int-exponent"), c("Pow", pos(2, 3), r(3), id="exponent"),
    c("PRelu", r(2, 3, 4, 4), r(3, 1, 1)), c("PRelu", r(2, 5), r(1), id="shared"),
    c("Max", r(2, 3, 4), r(3, 4), r(4)), c("Max", r(2, 3), id="one"), c("Min", r(2, 3), r(2, 3)),
    c("Sum", r(2, 3), r(3), r(2, 3)), c("Mean", r(2, 3), r(2, 3)),
    c("Where", Const(rng.random((2, 3, 4)) > 0.5), r(2, 3, 4), r(4), batch=1),
    c("Floor", r(2, 3)), c("Ceil", r(2, 3)), c("Round", r(2, 3)), c("Sign", r(2, 3)),
    c("RandomUniformLike", r(2, 3), seed=3.0), c("RandomNormalLike", r(2, 3), seed=3.0),
    c("MatMul", r(2, 3, 4), r(4, 5), id="3d-2d"), c("MatMul", r(2, 3, 4), r(2, 4, 5), id="batched"),
    c("MatMul", r(2, 1, 3, 4), r(2, 4, 5), id="bcast-batch"), c("MatMul", r(4), r(4, 5), batch=None, id="vec-mat"),
    c("MatMul", r(2, 3, 4), r(4), id="mat-vec"), c("MatMul", r(4), r(4), batch=None, id="vec-vec"),
    c("Gemm", r(2, 4), r(5, 4), r(5), transB=1, id="transB-bias"),
    c("Gemm", r(4, 3), r(4, 5), r(3, 5), transA=1, alpha=0.7, beta=1.3, batch=None, id="transA-scaled"),
    c("Gemm", r(3, 4), r(5, 4), r(1), transA=0, transB=1, beta=0.5, batch=None, id="scalar-bias"),
    c("Gemm", r(4, 3), r(5, 4), transA=1, transB=1, batch=None, id="both-no-bias"),
    c("Softmax", r(2, 3, 4), axis=1), c("Softmax", r(2, 5), id="last"), c("LogSoftmax", r(2, 3, 4), axis=1),
    c("LogSoftmax", r(2, 5), id="last"),
    c("BatchNormalization", r(4, 3, 2, 2), r(3), r(3), Const(r(3)), Const(pos(3)), outputs=3, use=(0,),
      training_mode=1, epsilon=1e-3, id="training-image"),
    c("BatchNormalization", r(6, 3), r(3), r(3), Const(r(3)), Const(pos(3)), outputs=3, use=(0,),
      training_mode=1, momentum=0.8, id="training-vector"),
    # momentum 0: outputs 1 and 2 are the batch statistics, which the rule reuses
    c("BatchNormalization", r(4, 3, 2, 2), r(3), r(3), Const(r(3)), Const(pos(3)), outputs=3, use=(0,),
      training_mode=1, momentum=0.0, id="training-batch-statistics"),
    c("BatchNormalization", r(5, 4), r(4), r(4), Const(r(4)), Const(pos(4)), outputs=3, use=(0,),
      training_mode=1, momentum=0.0, epsilon=1e-2, id="training-batch-statistics-vector"),
    c("SoftmaxCrossEntropyLoss", r(3, 5), ints(0, 4, 2), id="mean"),
    c("SoftmaxCrossEntropyLoss", r(3, 5), ints(1, 1, 3), reduction="sum", id="sum"),
    c("SoftmaxCrossEntropyLoss", r(3, 5), ints(1, 0, 3), reduction="none", id="none"),
    c("SoftmaxCrossEntropyLoss", r(3, 5), ints(2, 0, 4), outputs=2, id="log-prob"),
    c("SoftmaxCrossEntropyLoss", r(3, 5), ints(2, 0, 4), Const(pos(5)), id="weights"),
    c("SoftmaxCrossEntropyLoss", r(4, 5), ints(2, -1, 4, 1), Const(pos(5)), ignore_index=-1, id="ignore-weights"),
    c("SoftmaxCrossEntropyLoss", r(3, 5), ints(2, 1, 1), ignore_index=1, reduction="sum", id="ignore"),
    c("SoftmaxCrossEntropyLoss", r(2, 3, 2, 2), Const(rng.integers(0, 3, (2, 2, 2))), id="spatial"),
    c("Conv", r(2, 3, 5, 5), r(4, 3, 3, 3), r(4), pads=[1, 1, 1, 1], id="pad-bias"),
    c("Conv", r(1, 2, 7, 7), r(3, 2, 3, 3), strides=[2, 2], id="stride2-odd"),
    c("Conv", r(1, 2, 8, 6), r(3, 2, 3, 3), strides=[2, 2], id="stride2-even-dropped"),
    c("Conv", r(1, 2, 9, 8), r(2, 2, 2, 3), strides=[3, 2], pads=[0, 1, 2, 0], id="stride3-asym-pads"),
    c("Conv", r(2, 2, 7, 7), r(3, 2, 3, 3), dilations=[2, 2], pads=[1, 1, 1, 1], id="dilation"),
    c("Conv", r(2, 4, 5, 5), r(6, 2, 3, 3), r(6), group=2, pads=[1, 1, 1, 1], id="groups"),
    c("Conv", r(1, 3, 6, 6), r(3, 1, 3, 3), group=3, strides=[2, 2], dilations=[2, 1], id="depthwise"),
    c("Conv", r(2, 4, 6, 6), r(4, 1, 3, 3), r(4), group=4, pads=[1, 1, 1, 1], id="depthwise-batch-padded"),
    c("Conv", r(2, 3, 7, 7), r(3, 1, 3, 2), group=3, strides=[2, 1], pads=[0, 1, 1, 0], id="depthwise-strided"),
    c("Conv", r(2, 2, 9), r(2, 1, 3), group=2, dilations=[2], id="depthwise-1d"),
    c("Conv", r(1, 2, 7, 6), r(2, 2, 3, 3), auto_pad="SAME_UPPER", strides=[2, 2], id="same-upper"),
    c("Conv", r(2, 2, 9), r(3, 2, 4), strides=[2], pads=[1, 2], id="1d"),
    # stride 1 on maps of 8×8 and more: dx is a Conv with the flipped kernel (rules_conv._input_grad_as_conv)
    c("Conv", r(2, 3, 8, 9), r(4, 3, 3, 3), r(4), pads=[1, 0, 2, 1], id="flipped-input-grad"),
    c("Conv", r(1, 2, 8, 8, 8), r(2, 2, 2, 2, 3), pads=[1, 1, 0, 1, 0, 2], id="flipped-input-grad-3d"),
    # kernels of 16 taps or more: the weight gradient is taken as one Conv (rules_conv.LARGE_KERNEL_TAPS)
    c("Conv", r(2, 2, 8, 8), r(3, 2, 5, 5), r(3), id="large-kernel"),
    c("Conv", r(1, 2, 12, 11), r(2, 2, 4, 5), strides=[2, 3], pads=[1, 0, 2, 1], id="large-kernel-stride-dropped"),
    c("Conv", r(1, 2, 13, 12), r(2, 2, 4, 4), dilations=[2, 2], pads=[1, 1, 0, 2], id="large-kernel-dilation"),
    c("Conv", r(2, 2, 20), r(3, 2, 16), strides=[2], pads=[1, 0], id="large-kernel-1d"),
    c("ConvTranspose", r(2, 3, 4, 4), r(3, 2, 3, 3), r(2), strides=[2, 2], pads=[1, 1, 1, 1],
      output_padding=[1, 1], id="stride2"),
    c("ConvTranspose", r(1, 4, 3, 3), r(4, 3, 2, 2), group=2, strides=[2, 2], id="groups"),
    c("ConvTranspose", r(1, 2, 3, 4), r(2, 2, 3, 2), dilations=[2, 1], pads=[1, 0, 0, 1], id="dilation"),
    c("ConvTranspose", r(1, 2, 3, 3), r(2, 1, 3, 3), strides=[3, 3], output_padding=[2, 1], id="output-padding"),
    c("ConvTranspose", r(1, 2, 3, 3), r(2, 3, 4, 4), strides=[2, 2], pads=[1, 1, 1, 1], id="large-kernel"),
    c("MaxPool", r(2, 2, 4, 4), kernel_shape=[2, 2], strides=[2, 2], id="k2s2"),
    c("MaxPool", r(2, 2, 5, 7), kernel_shape=[2, 3], strides=[2, 3], id="tiles-floor"),
    c("MaxPool", r(2, 3, 9), kernel_shape=[3], strides=[3], id="tiles-1d"),
    c("MaxPool", r(1, 2, 5, 5), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], id="overlap-pad"),
    c("MaxPool", r(1, 2, 6, 6), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, id="ceil"),
    c("MaxPool", r(1, 1, 7, 7), kernel_shape=[2, 2], dilations=[2, 2], id="dilation"),
    c("MaxPool", r(1, 2, 4, 4), kernel_shape=[2, 2], outputs=2, id="with-indices"),
    c("AveragePool", r(2, 2, 4, 4), kernel_shape=[2, 2], strides=[2, 2], id="k2s2"),
    c("AveragePool", r(1, 2, 5, 5), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
      count_include_pad=1, id="pad-included"),
    c("AveragePool", r(1, 2, 5, 5), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], id="pad-excluded"),
    c("AveragePool", r(1, 1, 6, 6), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, count_include_pad=1,
      pads=[1, 1, 0, 0], id="ceil-included"),
    c("AveragePool", r(1, 1, 6, 7), kernel_shape=[3, 2], strides=[2, 2], ceil_mode=1, id="ceil-excluded"),
    c("GlobalAveragePool", r(2, 3, 4, 5)), c("GlobalMaxPool", r(2, 3, 4, 5)),
    c("Resize", r(2, 2, 3, 3), None, Const(np.array([1, 1, 2, 2], np.float32)), mode="nearest",
      coordinate_transformation_mode="asymmetric", nearest_mode="floor", id="nearest"),
    c("Resize", r(2, 2, 3, 4), None, Const(np.array([1, 1, 2, 3], np.float32)), mode="linear",
      coordinate_transformation_mode="half_pixel", id="linear"),
    c("Resize", r(1, 1, 4, 6), None, Const(np.array([1, 1, 0.5, 0.5], np.float32)), mode="linear",
      coordinate_transformation_mode="align_corners", id="linear-down"),
    c("Resize", r(2, 1, 5, 5), None, None, ints(3, 8), axes=[2, 3], mode="nearest", id="nearest-sizes"),
    c("Reshape", r(2, 3, 4), ints(0, 12)), c("Flatten", r(2, 3, 2, 2), axis=1),
    c("Squeeze", r(2, 1, 3, 1), ints(1, 3)), c("Unsqueeze", r(2, 3), ints(1, -1)),
    c("Expand", r(3, 1), ints(2, 3, 4), batch=None), c("Transpose", r(2, 3, 4, 5), perm=[0, 2, 3, 1]),
    c("Transpose", r(2, 3, 4), id="reverse"),
    c("Concat", r(2, 1, 3), r(2, 2, 3), r(2, 3, 3), axis=1), c("Concat", r(2, 3), axis=0, id="single"),
    c("Split", r(2, 6, 2), outputs=3, use=(0, 2), axis=1, num_outputs=3, id="unused-part"),
    c("Split", r(2, 4), ints(1, 3), outputs=2, axis=-1, id="sizes"),
    c("Slice", r(2, 6, 5), ints(1, -4), ints(5, 100), ints(1, 2), id="step1"),
    c("Slice", r(2, 6, 5), ints(-1, 0), ints(-100, 5), ints(1, 2), ints(-2, 2), id="steps"),
    c("Pad", r(2, 3, 4), ints(0, 1, 2, 0, 0, 1)), c("Pad", r(2, 3, 5), ints(1, 0, 2, 3), None, ints(1, -1), id="axes"),
    c("Pad", r(2, 3), ints(0, 1, 0, 2), Const(np.array(1.5)), id="value"),
    c("Gather", r(4, 3), ints(0, 2, 2, 3), axis=0, batch=None, id="rows-repeated"),
    c("Gather", r(2, 5, 3), Const(np.array(-2, dtype=np.int64)), axis=1, id="scalar-negative"),
    c("Gather", r(2, 3, 5), Const(np.array([[4, 0], [1, 4]], dtype=np.int64)), axis=2, id="matrix-last"),
    c("ReduceSum", r(2, 3, 4), ints(1), keepdims=0, id="keep0"), c("ReduceSum", r(2, 3, 4), id="all"),
    c("ReduceSum", r(2, 3, 4), ints(-1, 0), keepdims=1, id="keep1"),
    c("ReduceMean", r(2, 3, 4), ints(0, 2), keepdims=0, id="with-batch"),
    c("ReduceMean", r(2, 3, 4), ints(2), id="keep1"),
    c("ReduceMax", r(2, 3, 4), ints(1), keepdims=0, id="keep0"), c("ReduceMax", r(2, 3, 4), ints(2, 1), id="keep1"),
]


def _value_info(name: str, value: np.ndarray, batch: bool) -> onnx.ValueInfoProto:
    dims = ["N", *value.shape[1:]] if batch else list(value.shape)
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), dims)


def build(case: Case, dtype=np.float64) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list[str]]:
    """The op, its loss, its inputs (fed) and the names to differentiate."""
    cast = lambda v: v.astype(dtype) if v.dtype == np.float64 else v  # noqa: E731
    names, feeds, inits = [], {}, []
    for i, arg in enumerate(case.args):
        names.append("" if arg is None else f"in{i}")
        if isinstance(arg, Const):
            inits.append(numpy_helper.from_array(cast(arg.value), f"in{i}"))
        elif arg is not None:
            feeds[f"in{i}"] = cast(np.asarray(arg))
    outs = [f"y{i}" for i in range(case.outputs)]
    node = helper.make_node(case.op, names, outs, name="op", doc_string=DOC, **case.attrs)
    inputs = [_value_info(n, v, i == case.batch and v.ndim > 0) for i, (n, v) in
              enumerate((n, feeds[n]) for n in names if n in feeds)]
    probe = _model([node], inputs, [helper.make_empty_tensor_value_info(o) for o in outs], inits)
    values = evaluator(probe).run(None, feeds)
    weights = np.random.default_rng(1)
    nodes, terms = [node], []
    for i in case.use if case.use is not None else range(case.outputs):
        if np.issubdtype(values[i].dtype, np.floating):  # integer outputs (Indices) carry no loss
            r_i = weights.standard_normal(values[i].shape).astype(values[i].dtype)
            inits.append(numpy_helper.from_array(r_i, f"r{i}"))
            nodes += [helper.make_node("Mul", [outs[i], f"r{i}"], [f"m{i}"]),
                      helper.make_node("ReduceSum", [f"m{i}"], [f"s{i}"], keepdims=0)]
            terms.append(f"s{i}")
            loss_type = helper.np_dtype_to_tensor_dtype(r_i.dtype)
    nodes.append(helper.make_node("Sum", terms, ["loss"]))
    model = _model(nodes, inputs, [helper.make_tensor_value_info("loss", loss_type, [])], inits)
    wrt = [n for n, v in feeds.items() if np.issubdtype(v.dtype, np.floating)]
    return model, feeds, wrt


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", OPSET)]
    graph = helper.make_graph(nodes, "case", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))


def with_gradients(model: onnx.ModelProto, wrt: list[str], blocked_convs: bool = False
                   ) -> tuple[onnx.ModelProto, dict[str, str]]:
    grad_model = onnx.ModelProto()
    grad_model.CopyFrom(model)
    grads = add_gradients(grad_model, "loss", wrt, blocked_convs=blocked_convs)
    infos = {v.name: v for v in grad_model.graph.value_info}
    grad_model.graph.output.extend(infos[grads[w]] for w in wrt)
    onnx.checker.check_model(grad_model, full_check=True)
    return grad_model, grads


def finite_differences(model: onnx.ModelProto, feeds: dict, name: str, eps: float = 1e-6) -> np.ndarray:
    session = evaluator(model)
    base = feeds[name]
    grad = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        values = []
        for step in (eps, -eps):
            moved = base.copy()
            moved[index] += step
            values.append(session.run(["loss"], {**feeds, name: moved})[0])
        grad[index] = (values[0] - values[1]) / (2 * eps)
    return grad


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_finite_differences(case: Case) -> None:
    model, feeds, wrt = build(case)
    grad_model, grads = with_gradients(model, wrt)
    results = evaluator(grad_model).run(None, feeds)
    for w, analytic in zip(wrt, results[1:]):
        assert analytic.shape == feeds[w].shape, w
        np.testing.assert_allclose(analytic, finite_differences(model, feeds, w), rtol=1e-6, atol=1e-7,
                                   err_msg=f"d loss / d {w}")


@pytest.mark.parametrize("case", CASES)
def test_rule_runs_in_onnxruntime(case: Case) -> None:
    """The same gradient graph in float32 runs in onnxruntime and agrees."""
    ort = pytest.importorskip("onnxruntime")
    model, feeds, wrt = build(case)
    expected = evaluator(with_gradients(model, wrt)[0]).run(None, feeds)[1:]
    model32, feeds32, _ = build(case, np.float32)
    session = ort.InferenceSession(with_gradients(model32, wrt)[0].SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    for w, got, want in zip(wrt, session.run(None, feeds32)[1:], expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"d loss / d {w}")


CONV_CASES = [p for p in CASES if p.values[0].op in ("Conv", "ConvTranspose")] + [
    # with the blocked kernels: every stride-1 input gradient is a flipped Conv, small maps included
    c("Conv", r(2, 3, 4, 5), r(4, 3, 3, 3), r(4), pads=[1, 1, 1, 1], id="blocked-small-map"),
    c("Conv", r(2, 3, 6, 6), r(2, 3, 5, 5), pads=[2, 1, 0, 2], id="blocked-large-kernel"),
    c("Conv", r(1, 3, 9, 8), r(4, 3, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1], id="blocked-strided"),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_blocked_conv_forms_match_finite_differences(case: Case) -> None:
    """The forms chosen for onnxruntime's blocked kernels (every stride-1
    input gradient as a flipped Conv, weight gradients as a Conv) are exact."""
    model, feeds, wrt = build(case)
    grad_model, _ = with_gradients(model, wrt, blocked_convs=True)
    results = evaluator(grad_model).run(None, feeds)
    for w, analytic in zip(wrt, results[1:]):
        np.testing.assert_allclose(analytic, finite_differences(model, feeds, w), rtol=1e-6, atol=1e-7,
                                   err_msg=f"d loss / d {w}")


@pytest.mark.parametrize("case", CONV_CASES)
def test_blocked_conv_forms_run_on_blocked_kernels(case: Case) -> None:
    """The same in float32, its convolutions rewritten to the NCHWc kernels."""
    ort = pytest.importorskip("onnxruntime")
    from i2dl_dsl.lowering.nchwc import block_size, blocked_convolutions

    if not block_size():
        pytest.skip("this CPU or onnxruntime build has no blocked convolutions")
    model, feeds, wrt = build(case)
    expected = evaluator(with_gradients(model, wrt)[0]).run(None, feeds)[1:]
    model32, feeds32, _ = build(case, np.float32)
    blocked = blocked_convolutions(with_gradients(model32, wrt, blocked_convs=True)[0], block_size())
    session = ort.InferenceSession(blocked.SerializeToString(), providers=["CPUExecutionProvider"])
    for w, got, want in zip(wrt, session.run(None, feeds32)[1:], expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"d loss / d {w}")


def test_blocked_conv_forms_are_convolutions() -> None:
    """A 3×3 convolution on a 4×4 map: plain, dx is a ConvTranspose and dW an
    im2col (Slice, Concat, MatMul); for the blocked kernels, both are Convs
    (dx's with the kernel flipped by a MatMul)."""
    conv = c("Conv", r(2, 3, 4, 4), r(4, 3, 3, 3), pads=[1, 1, 1, 1]).values[0]
    model, feeds, wrt = build(conv)
    kinds = {blocked: [n.op_type for n in backward_nodes(with_gradients(model, wrt, blocked)[0])]
             for blocked in (False, True)}
    assert "ConvTranspose" in kinds[False] and "MatMul" in kinds[False] and "Conv" not in kinds[False]
    assert kinds[True].count("Conv") == 2 and not {"ConvTranspose", "Concat"} & set(kinds[True])
    assert kinds[True].count("MatMul") == 1  # the one that flips the kernel for dx


@pytest.mark.parametrize("size, as_conv", [(34, True), (35, False)])
def test_blocked_weight_gradient_is_im2col_beyond_32x32_maps(size: int, as_conv: bool) -> None:
    """The weight gradient as a Conv has gy's map as its kernel: a Conv up to
    32×32 (here 34 - 3 + 1 = 32), an im2col and a MatMul beyond."""
    conv = c("Conv", r(1, 2, size, size), r(2, 2, 3, 3)).values[0]
    model, _, _ = build(conv)
    kinds = [n.op_type for n in backward_nodes(with_gradients(model, ["in1"], blocked_convs=True)[0])]
    assert (kinds.count("Conv"), "MatMul" in kinds) == ((1, False) if as_conv else (0, True))


def test_every_rule_has_a_case() -> None:
    tested = {p.values[0].op for p in CASES}
    assert sorted(set(RULES) - tested) == []


# --- the driver -------------------------------------------------------------------------------

def graph_model(nodes: list, inputs: dict[str, tuple], inits: dict[str, np.ndarray] | None = None,
                dtype=TensorProto.DOUBLE) -> onnx.ModelProto:
    """A model from nodes (named after their op unless named), its inputs' shapes and initializers."""
    infos = [helper.make_tensor_value_info(n, dtype, list(s)) for n, s in inputs.items()]
    inits = [numpy_helper.from_array(v, n) for n, v in (inits or {}).items()]
    return _model(nodes, infos, [helper.make_tensor_value_info("loss", dtype, [])], inits)


def node(op: str, inputs: list[str], output: str, name: str = "", **attrs) -> onnx.NodeProto:
    name = name or output
    return helper.make_node(op, inputs, [output], name=name, doc_string=f"{DOC} {name}", **attrs)


def backward_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.name.startswith("grad/")]


def test_fan_in_is_one_sum() -> None:
    """x feeds Mul twice and Exp once: d/dx Σ(x·x + eˣ) = 2x + eˣ, summed by one Sum node."""
    model = graph_model([node("Mul", ["x", "x"], "sq"), node("Exp", ["x"], "ex"), node("Add", ["sq", "ex"], "s"),
                         node("ReduceSum", ["s"], "loss", keepdims=0)], {"x": ("N", 3)})
    grads = add_gradients(model, "loss", ["x"])
    sums = [n for n in backward_nodes(model) if n.op_type == "Sum"]
    assert [(list(n.output), len(n.input)) for n in sums] == [(["grad/x"], 3)]
    x = r(2, 3)
    (got,) = ReferenceEvaluator(model).run([grads["x"]], {"x": x})
    np.testing.assert_allclose(got, 2 * x + np.exp(x), rtol=1e-12)


def test_broadcast_is_summed_back_to_the_input_shape() -> None:
    model = graph_model([node("Add", ["x", "b"], "s"), node("Mul", ["s", "w"], "m"),
                         node("ReduceSum", ["m"], "loss", keepdims=0)], {"x": ("N", 3, 4), "b": (3, 1)},
                        {"w": r(3, 4)})
    grads = add_gradients(model, "loss", ["b"])
    producer = {o: n for n in model.graph.node for o in n.output}
    summed = producer[producer["grad/b"].input[0]]  # Reshape([N, 3, 4] summed over N and the last axis)
    assert (producer["grad/b"].op_type, summed.op_type) == ("Reshape", "ReduceSum")
    w = numpy_helper.to_array(model.graph.initializer[0])
    (got,) = ReferenceEvaluator(model).run([grads["b"]], {"x": r(5, 3, 4), "b": r(3, 1)})
    np.testing.assert_allclose(got, 5 * w.sum(axis=1, keepdims=True), rtol=1e-12)


def test_zero_gradients_emit_nothing() -> None:
    """A parameter off the loss's path gets explicit zeros and no backward
    nodes; a zero-derivative op (Floor) stops the flow; an integer path
    (Shape) needs no rule; gradients nobody asked for are not computed."""
    model = graph_model([node("Tanh", ["v"], "unused"), node("Floor", ["u"], "fl"), node("Shape", ["x"], "shape"),
                         node("Reshape", ["x", "shape"], "same"), node("Conv", ["same", "k"], "conv"),
                         node("Mul", ["conv", "fl"], "m"), node("ReduceSum", ["m"], "loss", keepdims=0)],
                        {"x": ("N", 1, 4, 4), "v": (2,), "u": (1,), "k": (1, 1, 3, 3)})
    grads = add_gradients(model, "loss", ["k", "v", "u"])
    made = {n.name.split("/")[1] for n in backward_nodes(model)}
    assert made == {"loss", "m", "conv", "v", "u"}  # the seed, Mul, Conv, then zeros for v and u
    assert not [n for n in backward_nodes(model) if n.op_type == "ConvTranspose"]  # dx: not asked for
    feeds = {"x": r(2, 1, 4, 4), "v": r(2), "u": np.array([1.7]), "k": r(1, 1, 3, 3)}  # floor(u) ≠ 0
    dk, dv, du = ReferenceEvaluator(model).run([grads[w] for w in ("k", "v", "u")], feeds)
    assert dv.shape == (2,) and not dv.any() and du.shape == (1,) and not du.any()
    assert dk.any()


def test_integer_casts_carry_no_gradient() -> None:
    """loss = Σ x·w + Σ float(int(x)): the second term is piecewise constant."""
    model = graph_model([node("Mul", ["x", "w"], "m"), node("Cast", ["x"], "i", to=TensorProto.INT64),
                         node("Cast", ["i"], "f", to=TensorProto.DOUBLE), node("Add", ["m", "f"], "s"),
                         node("ReduceSum", ["s"], "loss", keepdims=0)], {"x": (2, 3)}, {"w": r(2, 3)})
    grads = add_gradients(model, "loss", ["x"])
    (got,) = ReferenceEvaluator(model).run([grads["x"]], {"x": 5 * r(2, 3)})
    np.testing.assert_array_equal(got, numpy_helper.to_array(model.graph.initializer[0]))


def test_names_and_source_locations() -> None:
    """Gradients are `grad/<w>` (also a pass-through), nodes `grad/<node>/<op>`
    with the forward node's doc_string, and value_info gives their shapes."""
    model = graph_model([node("Identity", ["w"], "same"), node("Relu", ["x"], "relu"),
                         node("Add", ["same", "relu"], "s"), node("ReduceSum", ["s"], "loss", "total", keepdims=0)],
                        {"x": ("N", 3), "w": (3,)})
    grads = add_gradients(model, "loss", ["w", "x"])
    assert grads == {"w": "grad/w", "x": "grad/x"}
    forward = {n.name for n in model.graph.node if not n.name.startswith("grad/")}
    for n in backward_nodes(model):
        label = n.name.split("/")[1]  # a forward node, or a tensor (the loss's seed, w's own name)
        assert n.name.startswith(f"grad/{label}/{n.op_type}")
        assert n.doc_string == (f"{DOC} {label}" if label in forward else "")
    shapes = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
              for v in model.graph.value_info}
    assert shapes["grad/w"] == [3] and shapes["grad/x"] == ["N", 3]


def test_max_pool_gets_its_indices() -> None:
    model = graph_model([node("MaxPool", ["x"], "pool", kernel_shape=[2, 2]),
                         node("ReduceSum", ["pool"], "loss", keepdims=0)], {"x": ("N", 1, 3, 3)})
    grads = add_gradients(model, "loss", ["x"])
    assert len(model.graph.node[0].output) == 2
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    (got,) = evaluator(model).run([grads["x"]], {"x": x})
    np.testing.assert_array_equal(got[0, 0], [[0, 0, 0], [0, 1, 1], [0, 1, 1]])


@pytest.mark.parametrize("shape, k, by_position", [
    ((2, 3, 8, 8), 2, True), ((2, 2, 9, 12), 3, True), ((1, 2, 16, 8), 4, True),
    ((2, 3, 4, 4), 2, False),  # small maps keep MaxPool's Indices
    ((2, 3, 9, 8), 2, False),  # 9 rows: the last is dropped, no tiling
])
def test_max_pool_over_tiles_finds_the_first_argmax_without_indices(shape, k, by_position) -> None:
    """Windows that tile a large map take the argmax from the pooled maximum
    (the forward MaxPool keeps one output); the gradient is the one Indices
    give, ties included: small integers repeat within most windows."""
    ort = pytest.importorskip("onnxruntime")
    rng_ties = np.random.default_rng(3)
    x = np.maximum(rng_ties.integers(-2, 3, shape), 0).astype(np.float32)
    pooled = (*shape[:2], shape[2] // k, shape[3] // k)
    weights = rng_ties.standard_normal(pooled).astype(np.float32)
    got = {}
    for outputs in (1, 2):  # with an Indices output, the gradient scatters to it
        pool = helper.make_node("MaxPool", ["x"], ["pool", "indices"][:outputs], name="pool", doc_string=f"{DOC} pool",
                                kernel_shape=[k, k], strides=[k, k])
        model = graph_model([pool, node("Mul", ["pool", "w"], "weighted"), node("ReduceSum", ["weighted"], "loss", keepdims=0)],
                            {"x": ("N", *shape[1:]), "w": pooled}, dtype=TensorProto.FLOAT)
        grads = add_gradients(model, "loss", ["x"])
        kinds = [n.op_type for n in backward_nodes(model)]
        if outputs == 1:
            assert len(model.graph.node[0].output) == (1 if by_position else 2)
            assert ("Resize" in kinds) == by_position
        model.graph.output.append(helper.make_tensor_value_info(grads["x"], TensorProto.FLOAT, None))
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got[outputs] = session.run([grads["x"]], {"x": x, "w": weights})[0]
    np.testing.assert_array_equal(got[1], got[2])
    assert np.count_nonzero(got[1]) == np.count_nonzero(weights)  # one position per window
    torch = pytest.importorskip("torch")
    xt = torch.from_numpy(x).requires_grad_()
    (torch.nn.functional.max_pool2d(xt, k, k) * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_array_equal(got[1], xt.grad.numpy())


@pytest.mark.parametrize("shape, k", [((2, 3, 8, 8), 2), ((2, 2, 9, 12), 3), ((1, 2, 4, 4), 4)])
def test_average_pool_over_tiles_spreads_the_gradient(shape, k) -> None:
    """Windows that tile the map: dx is g / k² repeated over each window, by a
    nearest Resize rather than a grouped ConvTranspose."""
    ort = pytest.importorskip("onnxruntime")
    rng_pool = np.random.default_rng(4)
    x = rng_pool.standard_normal(shape).astype(np.float32)
    pooled = (*shape[:2], shape[2] // k, shape[3] // k)
    weights = rng_pool.standard_normal(pooled).astype(np.float32)
    pool = node("AveragePool", ["x"], "pool", kernel_shape=[k, k], strides=[k, k])
    model = graph_model([pool, node("Mul", ["pool", "w"], "weighted"), node("ReduceSum", ["weighted"], "loss", keepdims=0)],
                        {"x": ("N", *shape[1:]), "w": pooled}, dtype=TensorProto.FLOAT)
    grads = add_gradients(model, "loss", ["x"])
    kinds = [n.op_type for n in backward_nodes(model)]
    assert "Resize" in kinds and "ConvTranspose" not in kinds
    model.graph.output.append(helper.make_tensor_value_info(grads["x"], TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run([grads["x"]], {"x": x, "w": weights})
    want = (weights * np.float32(1 / k**2)).repeat(k, axis=2).repeat(k, axis=3)
    np.testing.assert_array_equal(got, want)


def test_missing_rule_names_op_node_and_source() -> None:
    model = graph_model([node("Cos", ["x"], "cos"), node("ReduceSum", ["cos"], "loss", keepdims=0)], {"x": (3,)})
    with pytest.raises(MissingGradient) as caught:
        add_gradients(model, "loss", ["x"])
    error = caught.value
    assert (error.op_type, error.node_name, error.doc_string) == ("Cos", "cos", f"{DOC} cos")
    assert "'Cos'" in str(error) and "'cos'" in str(error) and DOC in str(error)
    assert (error.span.path, error.span.line, error.span.col) == ("models/test.net", 7, 5)
    assert "Conv" in error.hints[0] and "MaxPool" in error.hints[0]


def test_unsupported_configuration_names_node_and_reason() -> None:
    model = graph_model([node("MaxPool", ["x"], "pool", kernel_shape=[2, 2], storage_order=1),
                         node("ReduceSum", ["pool"], "loss", "total", keepdims=0)], {"x": (1, 1, 4, 4)})
    with pytest.raises(MissingGradient, match="'MaxPool' \\(node 'pool' from models/test.net:7:5: .*storage_order=0"):
        add_gradients(model, "loss", ["x"])


def test_missing_rule_off_the_path_is_fine() -> None:
    model = graph_model([node("Cos", ["x"], "cos"), node("Mul", ["cos", "w"], "m"),
                         node("ReduceSum", ["m"], "loss", keepdims=0)], {"x": (3,), "w": (3,)})
    grads = add_gradients(model, "loss", ["w"])
    x = r(3)
    (got,) = ReferenceEvaluator(model).run([grads["w"]], {"x": x, "w": r(3)})
    np.testing.assert_allclose(got, np.cos(x))


# --- a whole network against PyTorch ------------------------------------------------------------

CNN_PARAMS = {"conv.weight": (4, 2, 3, 3), "conv.bias": (4,), "fc.weight": (5, 4 * 3 * 3), "fc.bias": (5,)}


def cnn_model(dtype: int) -> onnx.ModelProto:
    """Conv(p=1) → Relu → MaxPool(3, s=2) → Flatten → Gemm → SoftmaxCrossEntropyLoss, parameters as inputs."""
    nodes = [node("Conv", ["x", "conv.weight", "conv.bias"], "conv", pads=[1, 1, 1, 1]),
             node("Relu", ["conv"], "relu"), node("MaxPool", ["relu"], "pool", kernel_shape=[3, 3], strides=[2, 2]),
             node("Flatten", ["pool"], "flat", axis=1), node("Gemm", ["flat", "fc.weight", "fc.bias"], "fc", transB=1),
             node("SoftmaxCrossEntropyLoss", ["fc", "labels"], "loss", "ce")]
    model = graph_model(nodes, {"x": ("N", 2, 7, 7), **CNN_PARAMS}, dtype=dtype)
    model.graph.input.append(helper.make_tensor_value_info("labels", TensorProto.INT64, ["N"]))
    return model


def cnn_feeds(dtype) -> dict[str, np.ndarray]:
    values = np.random.default_rng(7)
    feeds = {name: (values.standard_normal(shape) * 0.5).astype(dtype) for name, shape in CNN_PARAMS.items()}
    return {**feeds, "x": values.standard_normal((3, 2, 7, 7)).astype(dtype), "labels": np.array([4, 0, 2])}


def torch_gradients(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    params = {n: torch.tensor(feeds[n], requires_grad=True) for n in [*CNN_PARAMS, "x"]}
    hidden = f.max_pool2d(f.relu(f.conv2d(params["x"], params["conv.weight"], params["conv.bias"],
                                          padding=1)), 3, stride=2)
    scores = f.linear(hidden.flatten(1), params["fc.weight"], params["fc.bias"])
    f.cross_entropy(scores, torch.tensor(feeds["labels"])).backward()
    return {n: p.grad.numpy() for n, p in params.items()}


def test_cnn_matches_pytorch_in_float64() -> None:
    feeds = cnn_feeds(np.float64)
    expected = torch_gradients(feeds)
    model = cnn_model(TensorProto.DOUBLE)
    grads = add_gradients(model, "loss", [*CNN_PARAMS, "x"])
    got = evaluator(model).run(list(grads.values()), feeds)
    for name, value in zip(grads, got):
        np.testing.assert_allclose(value, expected[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_cnn_matches_pytorch_in_onnxruntime_float32() -> None:
    ort = pytest.importorskip("onnxruntime")
    feeds = cnn_feeds(np.float32)
    expected = torch_gradients(feeds)
    model = cnn_model(TensorProto.FLOAT)
    grads = add_gradients(model, "loss", [*CNN_PARAMS, "x"])
    model.graph.output.extend(v for v in model.graph.value_info if v.name in grads.values())
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(list(grads.values()), feeds)
    for name, value in zip(grads, got):
        np.testing.assert_allclose(value, expected[name], rtol=1e-4, atol=1e-4, err_msg=name)
