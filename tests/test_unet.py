"""models/unet.net against U-Net as Ronneberger, Fischer and Brox (2015)
describe it, written here in plain PyTorch (torchvision has no U-Net):
parameter names, shapes and count, the output's shape (572×572 → 388×388),
and the exported ONNX model's output with the same weights.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from i2dl_dsl.checker import CheckedNetwork, check

torch = pytest.importorskip("torch")
nn = torch.nn

MODEL = Path(__file__).resolve().parents[1] / "models" / "unet.net"
PAPER_PARAMS = 31_030_658  # the count of this network (bias on every convolution, 2 classes)


class DoubleConv(nn.Module):
    def __init__(self, cin: int, c: int):
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(cin, c, 3), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(c, c, 3), nn.ReLU()

    def forward(self, x):
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))


class Down(nn.Module):
    def __init__(self, cin: int, c: int):
        super().__init__()
        self.maxpool1, self.double_conv1 = nn.MaxPool2d(2), DoubleConv(cin, c)

    def forward(self, x):
        return self.double_conv1(self.maxpool1(x))


def center_crop(x, like):
    top, left = (x.shape[2] - like.shape[2]) // 2, (x.shape[3] - like.shape[3]) // 2
    return x[:, :, top:top + like.shape[2], left:left + like.shape[3]]


class Up(nn.Module):
    def __init__(self, cin: int, c: int):
        super().__init__()
        self.upconv1 = nn.ConvTranspose2d(cin, c, 2, stride=2)
        self.double_conv1 = DoubleConv(2 * c, c)

    def forward(self, x, skip):
        u = self.upconv1(x)
        return self.double_conv1(torch.cat([center_crop(skip, u), u], dim=1))


class UNet(nn.Module):
    def __init__(self, width: int = 64, classes: int = 2):
        super().__init__()
        w = [width * 2**i for i in range(5)]
        self.double_conv1 = DoubleConv(1, w[0])
        for i in range(1, 5):
            setattr(self, f"down{i}", Down(w[i - 1], w[i]))
            setattr(self, f"up{i}", Up(w[5 - i], w[4 - i]))
        self.outc = nn.Conv2d(w[0], classes, 1)

    def forward(self, x):
        skips = [self.double_conv1(x)]
        for i in range(1, 5):
            skips.append(getattr(self, f"down{i}")(skips[-1]))
        y = skips.pop()
        for i in range(1, 5):
            y = getattr(self, f"up{i}")(y, skips.pop())
        return self.outc(y)


@lru_cache(maxsize=None)
def compiled(width: int) -> CheckedNetwork:
    return check(MODEL, {"width": width})


def our_tensors(net: CheckedNetwork) -> dict[str, tuple[int, ...]]:
    return {f"{node}.{suffix}": tuple(shape) for node, tensors in net.analysis.params.items()
            for suffix, shape in tensors.items()}


def test_parameters_are_the_papers_by_name_and_shape():
    with torch.device("meta"):
        reference = UNet()
    assert our_tensors(compiled(64)) == {n: tuple(t.shape) for n, t in reference.state_dict().items()}
    assert compiled(64).analysis.total_params == sum(p.numel() for p in reference.parameters()) == PAPER_PARAMS


def test_572_pixels_in_give_388_out():
    net = compiled(64)
    assert net.analysis.shapes[net.input] == (1, 572, 572)
    assert net.analysis.shapes[net.output] == (2, 388, 388)
    assert net.warnings == ()


def weights_for(net: CheckedNetwork, seed: int = 0) -> dict[str, np.ndarray]:
    """He-scaled weights and small biases, so that values stay of order 1 through 23 convolutions."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in our_tensors(net).items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if ".upconv" in name and len(shape) == 4:  # ConvTranspose2d: [Cin, Cout, k, k], each output sees Cin·k²/4
            fan_in = shape[0]
        scale = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.1
        weights[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return weights


def onnx_equals_torch(width: int, batch: int) -> None:
    from i2dl_dsl.lowering.export import to_onnx
    from i2dl_dsl.runtime import create_session

    net = compiled(width)
    weights = weights_for(net)
    model = to_onnx(net, weights=weights)
    reference = UNet(width)
    reference.load_state_dict({n: torch.from_numpy(w) for n, w in weights.items()})
    x = np.random.default_rng(1).standard_normal((batch, 1, 572, 572)).astype(np.float32)
    (ours,) = create_session(model.SerializeToString(), "cpu").session.run(None, {net.input: x})
    with torch.no_grad():
        expected = reference.eval()(torch.from_numpy(x)).numpy()
    assert ours.shape == expected.shape == (batch, 2, 388, 388)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_exported_outputs_equal_pytorch_at_width_4():
    onnx_equals_torch(width=4, batch=2)


@pytest.mark.slow
def test_exported_outputs_equal_pytorch_at_the_papers_width():
    onnx_equals_torch(width=64, batch=1)


def test_one_training_step_has_torchs_gradients_at_width_2():
    """Through the crops, concatenations and up-convolutions: the gradient
    of every parameter equals torch autograd's (mse against a random target)."""
    from i2dl_dsl.runtime import create_session
    from i2dl_dsl.train.step import TrainConfig, build_step

    net = compiled(2)
    weights = weights_for(net, seed=2)
    step = build_step(net, TrainConfig(loss="mse", optimizer={"name": "sgd"}, expose_gradients=True), weights)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1, 572, 572)).astype(np.float32)
    y = rng.standard_normal((2, 2, 388, 388)).astype(np.float32)
    session = create_session(step.model.SerializeToString(), "cpu")
    feeds = {**step.values, **step.state, step.input: x, "y": y, "lr": np.array(0.0, np.float32),
             "step": np.array(1.0, np.float32)}
    ours = dict(zip([o.name for o in session.session.get_outputs()], session.run(feeds)))

    reference = UNet(2)
    reference.load_state_dict({n: torch.from_numpy(w) for n, w in weights.items()})
    loss = torch.nn.functional.mse_loss(reference(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    # a float32 mean over 602,112 values: its rounding alone reaches 1e-5
    assert ours["loss"] == pytest.approx(loss.item(), rel=1e-4)
    for name, p in reference.named_parameters():
        expected = p.grad.numpy()
        error = np.abs(ours[f"grad/{name}"] - expected).max() / np.abs(expected).max()
        assert error <= 1e-4, f"{name}: {error:.2e}"
