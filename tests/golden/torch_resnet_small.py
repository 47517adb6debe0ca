"""ResNetSmall in PyTorch, written by i2dl-compile --emit torch from resnet_small.net.

The state_dict names are the .net file's layer names: ResNetSmall().load_state_dict(weights).
"""

from __future__ import annotations

import torch
from torch import nn


class Basic(nn.Module):
    def __init__(self, in_channels: int, c):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, c, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu1(out)
        out = self.conv2(out)
        out = self.bn2(out)
        x = x + out
        return self.relu2(x)


class BasicDown(nn.Module):
    def __init__(self, in_channels: int, c):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, c, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, c, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(c),
        )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu1(out)
        out = self.conv2(out)
        out = self.bn2(out)
        x = self.downsample(x)
        x = x + out
        return self.relu2(x)


class ResNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.layer1 = Basic(16, 16)
        self.layer2 = BasicDown(16, 32)
        self.layer3 = BasicDown(32, 64)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, 10),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stem(image)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.head(x)
