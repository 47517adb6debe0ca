"""`batchnorm` and `dropout`: the layers that behave differently in training.

batchnorm: y = γ (x - μ)/√(σ² + ε) + β per channel; params 2C (γ, β),
           buffers 2C (running mean and variance)
dropout:   identity at inference; in training, inverted dropout with keep 1 - p
"""

from __future__ import annotations

from ..diagnostics import UserError
from .base import Float, Layer, P, Shape, fmt_shape, register
from .declarations import ONES, ZEROS, ScaledBernoulli, TorchCode


@register
class BatchNorm(Layer):
    kind = "batchnorm"
    prefix = "bn"
    family = "norm"
    title = "batch norm"
    holds = "batch-norm running statistics"
    batch_statistics = True
    doc = "batch normalisation over channels (BatchNorm2d) or features (BatchNorm1d)"
    signature = (
        P("eps", Float(0.0, 1.0), 1e-5, "added to the variance"),
        P("momentum", Float(0.0, 1.0), 0.1, "weight of the new batch in the running averages"),
    )

    def infer(self, inputs: list[Shape]) -> Shape:
        if len(inputs[0]) == 2:
            raise UserError(f"works on images [C, H, W] or vectors [F], got the sequence "
                            f"{fmt_shape(inputs[0])}")
        return inputs[0]

    def params(self, inputs, output):
        return {"weight": (inputs[0][0],), "bias": (inputs[0][0],)}

    def buffers(self, inputs, output):
        return {"running_mean": (inputs[0][0],), "running_var": (inputs[0][0],)}

    def inits(self):
        return {"weight": ONES, "bias": ZEROS, "running_mean": ZEROS, "running_var": ONES}

    def lower(self, g, inputs):
        if g.training:
            return self._lower_training(g, inputs[0])
        operands = [inputs[0], g.param("weight"), g.param("bias"), g.param("running_mean"), g.param("running_var")]
        # ONNX's momentum weighs the old average: 1 - PyTorch's momentum.
        return g.op("BatchNormalization", operands, epsilon=self.a.eps, momentum=1.0 - self.a.momentum)

    def torch_code(self, t):
        # The momentum is PyTorch's (the weight of the new batch), and so is
        # the running variance's unbiased update.
        kind = "nn.BatchNorm2d" if len(t.in_shape()) == 3 else "nn.BatchNorm1d"
        return TorchCode(t.build(kind, [t.width()], eps=(t.arg("eps"), "1e-05"), momentum=(t.arg("momentum"), "0.1")))

    def _lower_training(self, g, x):
        """ONNX's fused BatchNormalization in training mode with momentum 0,
        so that its second and third outputs are the batch statistics μ_B and
        σ²_B (biased); the running averages then take μ_B and the unbiased
        σ²_B, as PyTorch's do. onnxruntime's CPU kernel writes those outputs
        into the buffers of inputs 3 and 4 (it declares them aliases), so the
        op gets scratch tensors of its own there, never the running
        statistics themselves (the session's tensors) nor a constant, which
        onnxruntime may share between layers."""
        zero = g.const(0.0, dtype="float32", hint="zero")
        scratch = [g.op("Mul", [g.param(suffix), zero]) for suffix in ("running_mean", "running_var")]
        y, mean, var = g.op("BatchNormalization", [x, g.param("weight"), g.param("bias"), *scratch], outputs=3,
                            epsilon=self.a.eps, momentum=0.0, training_mode=1)
        self._update_running(g, x, mean, var, g.input_shapes[0][0])
        return y

    def _update_running(self, g, x, mean, var, channels: int) -> None:
        count = g.op("Div", [g.op("Cast", [g.op("Size", [x])], to=1), g.const(channels, dtype="float32")])
        bessel = g.op("Div", [count, g.op("Sub", [count, g.const(1.0, dtype="float32")])])
        keep = g.const(1.0 - self.a.momentum, dtype="float32", hint="keep")
        take = g.const(self.a.momentum, dtype="float32", hint="take")
        for suffix, batch_value in (("running_mean", mean), ("running_var", g.op("Mul", [var, bessel]))):
            old = g.op("Mul", [g.param(suffix), keep])
            g.buffer_update(suffix, g.op("Add", [old, g.op("Mul", [batch_value, take])]))


@register
class Dropout(Layer):
    kind = "dropout"
    family = "regularization"
    doc = "inverted dropout; the identity at inference"
    signature = (P("p", Float(0.0, 1.0, high_open=True), 0.5, "probability of dropping a unit"),)

    def random_inputs(self, output):
        # Inverted dropout: the mask holds 0 or 1/(1-p), drawn afresh each step.
        return {"mask": ScaledBernoulli(tuple(output), 1.0 - self.a.p)} if self.a.p > 0 else {}

    def lower(self, g, inputs):
        if g.training and self.a.p > 0:
            mask = g.random_input("mask", self.random_inputs(g.output_shape)["mask"])
            return g.op("Mul", [inputs[0], mask])
        return g.op("Identity", inputs)

    def torch_code(self, t):
        return TorchCode(t.build("nn.Dropout", [], p=(t.arg("p"), "0.5")))
