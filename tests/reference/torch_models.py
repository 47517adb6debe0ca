"""The model zoo (`models/*.net`) written by hand in plain PyTorch.

Each builder returns an `nn.Module` that computes the same network as the
`.net` file, with every submodule named as the compiler names the layer
(`layer2.0.conv1`, `inception3a.branch2.0.bn`, `features.3`), so
that `state_dict()` keys and shapes equal the compiler's parameters and
buffers (PyTorch's `num_batches_tracked` aside), and a forward hook on a
module sees the output of the layer of the same name.

The ImageNet models follow torchvision's `models/` source (torchvision is
not a dependency): alexnet.py, vgg.py (`vgg16`), resnet.py (`resnet18`,
`resnet50`, v1.5) and googlenet.py (`aux_logits=False`).

Joins (`add`, `concat`), `flatten` and activations are modules too, so
that every layer of the `.net` file has a module to hook.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn


# ----------------------------------------------------------------- helpers


def named(**layers: nn.Module) -> nn.Sequential:
    """A chain whose modules carry the given names (`conv1`, `bn1`, ...)."""
    return nn.Sequential(OrderedDict(layers))


class Add(nn.Module):
    """Element-wise sum: the `add` that closes a residual or joins a skip."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    """Join along channels (dimension 1, after the batch)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class LSTM(nn.LSTM):
    """One-layer batch-first LSTM returning every step, or only the last."""

    def __init__(self, features: int, hidden: int, sequences: bool = True):
        super().__init__(features, hidden, batch_first=True)
        self.sequences = sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out, _ = super().forward(x)
        return out if self.sequences else out[:, -1]


class RNN(nn.RNN):
    """One-layer batch-first tanh RNN returning every step, or only the last."""

    def __init__(self, features: int, hidden: int, sequences: bool = True):
        super().__init__(features, hidden, nonlinearity="tanh", batch_first=True)
        self.sequences = sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out, _ = super().forward(x)
        return out if self.sequences else out[:, -1]


# ----------------------------------------------------------------- small models


def lenet5() -> nn.Module:
    """models/lenet5.net"""
    return named(
        conv1=nn.Conv2d(1, 6, 5), tanh1=nn.Tanh(), avgpool1=nn.AvgPool2d(2, 2),
        conv2=nn.Conv2d(6, 16, 5), tanh2=nn.Tanh(), avgpool2=nn.AvgPool2d(2, 2),
        conv3=nn.Conv2d(16, 120, 5), tanh3=nn.Tanh(),
        flatten1=nn.Flatten(),
        fc1=nn.Linear(120, 84), tanh4=nn.Tanh(),
        fc2=nn.Linear(84, 10),
    )


def mlp() -> nn.Module:
    """models/mlp.net"""
    return named(fc1=nn.Linear(64, 128), relu1=nn.ReLU(), fc2=nn.Linear(128, 64), relu2=nn.ReLU(),
                 fc3=nn.Linear(64, 10))


def logistic_regression() -> nn.Module:
    """models/logistic_regression.net: the logit of one class."""
    return named(fc1=nn.Linear(64, 1))


def lstm_classifier() -> nn.Module:
    """models/lstm_classifier.net"""
    return named(lstm1=LSTM(8, 64), lstm2=LSTM(64, 64, sequences=False), fc1=nn.Linear(64, 10))


def rnn_classifier() -> nn.Module:
    """models/rnn_classifier.net"""
    return named(rnn1=RNN(8, 64), rnn2=RNN(64, 64, sequences=False), fc1=nn.Linear(64, 10))


# ----------------------------------------------------------------- AlexNet, VGG


def alexnet(classes: int = 1000) -> nn.Module:
    """models/alexnet.net; torchvision's alexnet.py."""
    return named(
        features=nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        ),
        avgpool=nn.AdaptiveAvgPool2d((6, 6)),
        flatten1=nn.Flatten(),
        classifier=nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, classes),
        ),
    )


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(classes: int = 1000) -> nn.Module:
    """models/vgg16.net; torchvision's vgg.py, configuration "D" without batch norm."""
    layers: list[nn.Module] = []
    channels = 3
    for v in VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU()]
            channels = v
    return named(
        features=nn.Sequential(*layers),
        avgpool=nn.AdaptiveAvgPool2d((7, 7)),
        flatten1=nn.Flatten(),
        classifier=nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, classes),
        ),
    )


# ----------------------------------------------------------------- ResNet


def _projection(cin: int, cout: int, stride: int) -> nn.Module:
    """The `shortcut { downsample: conv(k=1) -> batchnorm }` of a block."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: blocks `basic` and `basic_down`."""

    def __init__(self, cin: int, c: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = _projection(cin, c, stride) if stride != 1 or cin != c else None
        self.add1 = Add()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        s = x if self.downsample is None else self.downsample(x)
        return self.relu2(self.add1(s, y))


class Bottleneck(nn.Module):
    """1x1, 3x3 (strided: v1.5), 1x1 x4 and a shortcut: `bottleneck` and `bottleneck_down`."""

    expansion = 4

    def __init__(self, cin: int, c: int, stride: int = 1):
        super().__init__()
        cout = c * self.expansion
        self.conv1 = nn.Conv2d(cin, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(c, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = _projection(cin, cout, stride) if stride != 1 or cin != cout else None
        self.add1 = Add()
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.relu2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        s = x if self.downsample is None else self.downsample(x)
        return self.relu3(self.add1(s, y))


def _resnet(block: type[BasicBlock] | type[Bottleneck], depths: tuple[int, ...], classes: int) -> nn.Module:
    expansion = getattr(block, "expansion", 1)
    stages: dict[str, nn.Module] = {}
    cin = 64
    for index, (c, depth) in enumerate(zip((64, 128, 256, 512), depths)):
        stride = 1 if index == 0 else 2
        blocks = [block(cin, c, stride)] + [block(c * expansion, c) for _ in range(depth - 1)]
        stages[f"layer{index + 1}"] = nn.Sequential(*blocks)
        cin = c * expansion
    return named(
        conv1=nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
        bn1=nn.BatchNorm2d(64),
        relu1=nn.ReLU(),
        maxpool1=nn.MaxPool2d(3, stride=2, padding=1),
        **stages,
        global_avgpool1=nn.AdaptiveAvgPool2d(1),
        flatten1=nn.Flatten(),
        fc=nn.Linear(512 * expansion, classes),
    )


def resnet18(classes: int = 1000) -> nn.Module:
    """models/resnet18.net; torchvision's resnet.py `resnet18`."""
    return _resnet(BasicBlock, (2, 2, 2, 2), classes)


def resnet50(classes: int = 1000) -> nn.Module:
    """models/resnet50.net; torchvision's resnet.py `resnet50` (v1.5)."""
    return _resnet(Bottleneck, (3, 4, 6, 3), classes)


# ----------------------------------------------------------------- GoogLeNet


def basic_conv(cin: int, c: int, k: int, s: int = 1, p: int = 0) -> nn.Module:
    """torchvision's BasicConv2d: conv without bias, batch norm (eps 0.001), relu."""
    return named(conv=nn.Conv2d(cin, c, k, stride=s, padding=p, bias=False),
                 bn=nn.BatchNorm2d(c, eps=0.001), relu1=nn.ReLU())


class Inception(nn.Module):
    """torchvision's Inception; branch3 uses a 3x3 kernel, as there."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pp: int):
        super().__init__()
        self.branch1 = basic_conv(cin, c1, 1)
        self.branch2 = nn.Sequential(basic_conv(cin, c3r, 1), basic_conv(c3r, c3, 3, p=1))
        self.branch3 = nn.Sequential(basic_conv(cin, c5r, 1), basic_conv(c5r, c5, 3, p=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), basic_conv(cin, pp, 1))
        self.concat1 = Concat()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.concat1(self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))


def googlenet(classes: int = 1000) -> nn.Module:
    """models/googlenet.net; torchvision's googlenet.py with aux_logits=False."""
    return named(
        conv1=basic_conv(3, 64, 7, s=2, p=3),
        maxpool1=nn.MaxPool2d(3, stride=2, ceil_mode=True),
        conv2=basic_conv(64, 64, 1),
        conv3=basic_conv(64, 192, 3, p=1),
        maxpool2=nn.MaxPool2d(3, stride=2, ceil_mode=True),
        inception3a=Inception(192, 64, 96, 128, 16, 32, 32),
        inception3b=Inception(256, 128, 128, 192, 32, 96, 64),
        maxpool3=nn.MaxPool2d(3, stride=2, ceil_mode=True),
        inception4a=Inception(480, 192, 96, 208, 16, 48, 64),
        inception4b=Inception(512, 160, 112, 224, 24, 64, 64),
        inception4c=Inception(512, 128, 128, 256, 24, 64, 64),
        inception4d=Inception(512, 112, 144, 288, 32, 64, 64),
        inception4e=Inception(528, 256, 160, 320, 32, 128, 128),
        maxpool4=nn.MaxPool2d(2, stride=2, ceil_mode=True),
        inception5a=Inception(832, 256, 160, 320, 32, 128, 128),
        inception5b=Inception(832, 384, 192, 384, 48, 128, 128),
        global_avgpool1=nn.AdaptiveAvgPool2d(1),
        flatten1=nn.Flatten(),
        dropout1=nn.Dropout(0.2),
        fc=nn.Linear(1024, classes),
    )


# ----------------------------------------------------------------- FCN


def _down(cin: int, c: int) -> nn.Module:
    """Block `down`: two 3x3 convolutions, then a 2x2 max pool."""
    return named(conv1=nn.Conv2d(cin, c, 3, padding=1), relu1=nn.ReLU(),
                 conv2=nn.Conv2d(c, c, 3, padding=1), relu2=nn.ReLU(), maxpool1=nn.MaxPool2d(2))


class FCN8s(nn.Module):
    """models/fcn.net: coarse scores upsampled x2, x2, x8, summed with pool4's and pool3's scores."""

    def __init__(self, classes: int = 21):
        super().__init__()
        self.down1, self.down2, self.down3 = _down(3, 32), _down(32, 64), _down(64, 128)
        self.down4, self.down5 = _down(128, 256), _down(256, 256)
        self.conv1, self.relu1, self.dropout1 = nn.Conv2d(256, 512, 1), nn.ReLU(), nn.Dropout(0.5)
        self.conv2, self.relu2, self.dropout2 = nn.Conv2d(512, 512, 1), nn.ReLU(), nn.Dropout(0.5)
        self.conv3 = nn.Conv2d(512, classes, 1)
        self.upconv1 = nn.ConvTranspose2d(classes, classes, 4, stride=2, padding=1, bias=False)
        self.conv4 = nn.Conv2d(256, classes, 1)
        self.add1 = Add()
        self.upconv2 = nn.ConvTranspose2d(classes, classes, 4, stride=2, padding=1, bias=False)
        self.conv5 = nn.Conv2d(128, classes, 1)
        self.add2 = Add()
        self.upconv3 = nn.ConvTranspose2d(classes, classes, 16, stride=8, padding=4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool3 = self.down3(self.down2(self.down1(x)))
        pool4 = self.down4(pool3)
        pool5 = self.down5(pool4)
        score = self.dropout1(self.relu1(self.conv1(pool5)))
        score = self.conv3(self.dropout2(self.relu2(self.conv2(score))))
        fuse4 = self.add1(self.conv4(pool4), self.upconv1(score))
        fuse3 = self.add2(self.conv5(pool3), self.upconv2(fuse4))
        return self.upconv3(fuse3)


def fcn() -> nn.Module:
    """models/fcn.net"""
    return FCN8s()


# ----------------------------------------------------------------- the zoo

BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "googlenet": googlenet,
    "fcn": fcn,
    "lstm_classifier": lstm_classifier,
    "rnn_classifier": rnn_classifier,
    "logistic_regression": logistic_regression,
    "mlp": mlp,
}


# ----------------------------------------------------------------- training models


def digits_cnn() -> nn.Module:
    """models/digits_cnn.net"""
    return named(
        conv1=nn.Conv2d(1, 32, 3, padding=1, bias=False), bn1=nn.BatchNorm2d(32), relu1=nn.ReLU(),
        conv2=nn.Conv2d(32, 32, 3, padding=1, bias=False), bn2=nn.BatchNorm2d(32), relu2=nn.ReLU(),
        maxpool1=nn.MaxPool2d(2),
        conv3=nn.Conv2d(32, 64, 3, padding=1, bias=False), bn3=nn.BatchNorm2d(64), relu3=nn.ReLU(),
        maxpool2=nn.MaxPool2d(2),
        flatten1=nn.Flatten(), dropout1=nn.Dropout(0.3),
        fc1=nn.Linear(256, 64), relu4=nn.ReLU(),
        head=nn.Linear(64, 10),
    )


def resnet_small(classes: int = 10) -> nn.Module:
    """models/resnet_small.net"""
    return named(
        stem=nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()),
        layer1=BasicBlock(16, 16), layer2=BasicBlock(16, 32, 2), layer3=BasicBlock(32, 64, 2),
        head=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)),
    )
