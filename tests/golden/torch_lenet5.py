"""LeNet5 in PyTorch, written by i2dl-compile --emit torch from lenet5.net.

The state_dict names are the .net file's layer names: LeNet5().load_state_dict(weights).
"""

from __future__ import annotations

import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
        self.tanh1 = nn.Tanh()
        self.avgpool1 = nn.AvgPool2d(2, stride=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.tanh2 = nn.Tanh()
        self.avgpool2 = nn.AvgPool2d(2, stride=2)
        self.conv3 = nn.Conv2d(16, 120, kernel_size=5)
        self.tanh3 = nn.Tanh()
        self.flatten1 = nn.Flatten()
        self.fc1 = nn.Linear(120, 84)
        self.tanh4 = nn.Tanh()
        self.fc2 = nn.Linear(84, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.conv1(image)
        x = self.tanh1(x)
        x = self.avgpool1(x)
        x = self.conv2(x)
        x = self.tanh2(x)
        x = self.avgpool2(x)
        x = self.conv3(x)
        x = self.tanh3(x)
        x = self.flatten1(x)
        x = self.fc1(x)
        x = self.tanh4(x)
        return self.fc2(x)
