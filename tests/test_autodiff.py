"""Gradients emitted by i2dl_dsl.autodiff, checked against finite differences
(every rule of the table) and against PyTorch autograd (a whole small CNN)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops import op_conv_transpose, op_max_pool

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


def evaluator(model: onnx.ModelProto) -> ReferenceEvaluator:
    return ReferenceEvaluator(model, new_ops=[ConvTranspose, MaxPool])


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
    c("Clip", r(3, 4), np.array(-0.5), np.array(0.6), id="min-max"),
    c("Clip", r(3, 4), None, Const(np.array(0.3)), id="max-only"), c("Clip", r(3, 4), id="no-bounds"),
    c("Add", r(2, 3, 4), r(4), id="bcast-last"), c("Add", r(2, 3, 4), r(3, 1), id="bcast-inner"),
    c("Add", r(4), r(2, 3, 4), batch=1, id="bcast-first"), c("Add", r(2, 3), r(2, 3), id="same"),
    c("Sub", r(2, 3, 4), r(1, 4)), c("Mul", r(2, 3, 4), r(3, 1), id="bcast"), c("Mul", r(2, 3), r(), id="scalar"),
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
    c("Conv", r(1, 2, 7, 6), r(2, 2, 3, 3), auto_pad="SAME_UPPER", strides=[2, 2], id="same-upper"),
    c("Conv", r(2, 2, 9), r(3, 2, 4), strides=[2], pads=[1, 2], id="1d"),
    c("ConvTranspose", r(2, 3, 4, 4), r(3, 2, 3, 3), r(2), strides=[2, 2], pads=[1, 1, 1, 1],
      output_padding=[1, 1], id="stride2"),
    c("ConvTranspose", r(1, 4, 3, 3), r(4, 3, 2, 2), group=2, strides=[2, 2], id="groups"),
    c("ConvTranspose", r(1, 2, 3, 4), r(2, 2, 3, 2), dilations=[2, 1], pads=[1, 0, 0, 1], id="dilation"),
    c("ConvTranspose", r(1, 2, 3, 3), r(2, 1, 3, 3), strides=[3, 3], output_padding=[2, 1], id="output-padding"),
    c("MaxPool", r(2, 2, 4, 4), kernel_shape=[2, 2], strides=[2, 2], id="k2s2"),
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
        if np.issubdtype(values[i].dtype, np.floating):
            inits.append(numpy_helper.from_array(weights.standard_normal(values[i].shape).astype(values[i].dtype), f"r{i}"))
            nodes += [helper.make_node("Mul", [outs[i], f"r{i}"], [f"m{i}"]),
                      helper.make_node("ReduceSum", [f"m{i}"], [f"s{i}"], keepdims=0)]
            terms.append(f"s{i}")
    nodes.append(helper.make_node("Sum", terms, ["loss"]))
    loss_type = helper.np_dtype_to_tensor_dtype(values[terms and int(terms[0][1:])].dtype)
    model = _model(nodes, inputs, [helper.make_tensor_value_info("loss", loss_type, [])], inits)
    wrt = [n for n, v in feeds.items() if np.issubdtype(v.dtype, np.floating)]
    return model, feeds, wrt


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", OPSET)]
    graph = helper.make_graph(nodes, "case", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))


def with_gradients(model: onnx.ModelProto, wrt: list[str]) -> tuple[onnx.ModelProto, dict[str, str]]:
    grad_model = onnx.ModelProto()
    grad_model.CopyFrom(model)
    grads = add_gradients(grad_model, "loss", wrt)
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


@pytest.mark.parametrize("case", [p for p in CASES if p.values[0].op not in ("RandomNormalLike",)])
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


def test_every_rule_has_a_case() -> None:
    tested = {p.values[0].op for p in CASES}
    assert sorted(set(RULES) - tested) == []
