"""2-D ResNet feature backbones (torchvision ResNet-18/50) with any number of input channels.

A backbone maps images to one feature vector per sample::

    ResNetFeatures("resnet18", in_channels=C)(x: (B, C, H, W)) -> (B, 512)

H and W should be multiples of 32 (five stride-2 stages); other sizes work but lose border
pixels. The submodules keep torchvision's names (``conv1``, ``bn1``, ``layer1.0.conv1`` …), so an
ImageNet state dict from torchvision loads with no renaming (minus its ``fc``), and so does the
backbone part of a DeepEthogram checkpoint (DEG's ResNet also used torchvision's names).

ResNet-50 ends in 2048 features; like DEG we compress them to 512 with ``compression_fc`` =
Linear(2048, 512) + ReLU (DEG's name and layout, key ``compression_fc.0.weight``), so every arch
gives 512-d features and the per-frame feature files stay the same size. ResNet-18 has no
compression layer.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

FEATURE_DIM = 512

_BUILDERS = {
    "resnet18": torchvision.models.resnet18,
    "resnet50": torchvision.models.resnet50,
}


class ResNetFeatures(nn.Module):
    """Torchvision ResNet without its classifier: (B, in_channels, H, W) -> (B, 512).

    ``conv1`` takes ``in_channels`` channels (3 for the spatial stream, 2(N-1) for the flow
    stream). Weights start from torchvision's default random init; ImageNet weights are loaded
    separately (``deg_core.models.weights.init_from_imagenet``), never downloaded here.
    """

    is_3d = False

    def __init__(self, arch: str = "resnet18", in_channels: int = 3):
        super().__init__()
        if arch not in _BUILDERS:
            raise ValueError(f"unknown 2-D ResNet arch {arch!r}; expected one of {list(_BUILDERS)}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        net = _BUILDERS[arch](weights=None)  # weights=None: never touches the network
        self.arch = arch
        self.in_channels = in_channels
        if in_channels == 3:
            self.conv1 = net.conv1
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        self.avgpool = net.avgpool
        width = net.fc.in_features  # 512 (BasicBlock) or 2048 (Bottleneck)
        self.compression_fc: nn.Module
        if width > FEATURE_DIM:
            self.compression_fc = nn.Sequential(
                nn.Linear(width, FEATURE_DIM), nn.ReLU(inplace=True)
            )
        else:
            self.compression_fc = nn.Identity()
        self.out_features = FEATURE_DIM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, H, W) -> features (B, 512)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.compression_fc(x)
