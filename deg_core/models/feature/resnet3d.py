"""3-D ResNet-34 feature backbone (the "slow" preset's spatial and flow streams).

    ResNet3d34(in_channels=C)(x: (B, C, T, H, W)) -> (B, 512)

The architecture is the Kinetics 3-D ResNet DEG used (Hara et al., 3D-ResNets-PyTorch):
a 7x7x7 stem with stride (1, 2, 2), a 3x3x3 max-pool with stride 2 in all three dimensions, then
four stages of 3x3x3 basic blocks, layers [3, 4, 6, 3], widths 64/128/256/512, strides 1/2/2/2,
projection shortcuts (1x1x1 conv + BN, "type B") where shape changes, and global average pooling.
About 63.5M parameters with 3 input channels.

Submodule names match DEG's (``conv1``, ``bn1``, ``layer2.0.downsample.0`` …) so a DEG
checkpoint's backbone keys load after prefix renaming only. The spatial stream sees the N RGB
frames as (B, 3, N, H, W); the flow stream sees the N-1 flows as (B, 2, N-1, H/2, W/2). Any T >= 1
works (padding keeps every stage non-empty).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

FEATURE_DIM = 512


def _conv3(in_planes: int, planes: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock3d(nn.Module):
    """Two 3x3x3 conv+BN layers with a residual connection: (B, in, T, H, W) -> (B, planes, …)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            # projection shortcut; the index names (downsample.0 / .1) match DEG's checkpoints
            self.downsample = nn.Sequential(
                nn.Conv3d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNet3d(nn.Module):
    """3-D ResNet of basic blocks without a classifier: (B, in_channels, T, H, W) -> (B, 512)."""

    is_3d = True

    def __init__(self, layers: Sequence[int] = (3, 4, 6, 3), in_channels: int = 3):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"expected 4 stage depths, got {list(layers)}")
        self.in_channels = in_channels
        self.conv1 = nn.Conv3d(
            in_channels, 64, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False
        )
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        widths = (64, 128, 256, 512)
        strides = (1, 2, 2, 2)
        in_planes = 64
        stages = []
        for depth, width, stride in zip(layers, widths, strides, strict=True):
            blocks = [BasicBlock3d(in_planes, width, stride)]
            blocks += [BasicBlock3d(width, width) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            in_planes = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.out_features = FEATURE_DIM
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, T, H, W) -> features (B, 512)."""
        if x.ndim != 5:
            raise ValueError(f"3-D ResNet expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def resnet3d_34(in_channels: int = 3) -> ResNet3d:
    """3-D ResNet-34 (layers [3, 4, 6, 3]); 3 channels for RGB, 2 for flow."""
    return ResNet3d((3, 4, 6, 3), in_channels=in_channels)
