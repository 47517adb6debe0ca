"""`batchnorm` and `dropout`: the layers that behave differently in training.

batchnorm: y = γ (x - μ)/√(σ² + ε) + β per channel; params 2C (γ, β),
           buffers 2C (running mean and variance)
dropout:   identity at inference; in training, inverted dropout with keep 1 - p
"""

from __future__ import annotations

from ..diagnostics import UserError
from .base import Float, Layer, P, Shape, fmt_shape, register


@register
class BatchNorm(Layer):
    kind = "batchnorm"
    prefix = "bn"
    family = "norm"
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

    def initial_value(self, suffix, shape, scheme, rng):
        import numpy as np

        return (np.ones if suffix in ("weight", "running_var") else np.zeros)(shape, dtype=np.float32)

    def lower(self, g, inputs):
        operands = [inputs[0], g.param("weight"), g.param("bias"), g.param("running_mean"), g.param("running_var")]
        # ONNX's momentum weighs the old average: 1 - PyTorch's momentum.
        return g.op("BatchNormalization", operands, epsilon=self.a.eps, momentum=1.0 - self.a.momentum)


@register
class Dropout(Layer):
    kind = "dropout"
    family = "regularization"
    doc = "inverted dropout; the identity at inference"
    signature = (P("p", Float(0.0, 1.0, high_open=True), 0.5, "probability of dropping a unit"),)

    def lower(self, g, inputs):
        return g.op("Identity", inputs)
