"""Feature extractors: the hidden two-stream model and its ResNet backbones.

``HiddenTwoStream.build(arch, flow_generator, num_classes)`` with arch one of FEATURE_ARCHS:

=============  ======================  ==============================================
arch           backbones (per stream)  params, both streams + heads (K=3, N=11)
=============  ======================  ==============================================
resnet18       2-D ResNet-18           22.4M  (fast preset with TinyMotionNet ~24.3M)
resnet50       2-D ResNet-50 + 2048→512  49.2M  (medium preset with MotionNet ~95M)
resnet3d_34    3-D ResNet-34           127M   (slow preset with TinyMotionNet3D ~128M)
=============  ======================  ==============================================
"""

from deg_core.models.feature.resnet import ResNetFeatures
from deg_core.models.feature.resnet3d import BasicBlock3d, ResNet3d, resnet3d_34
from deg_core.models.feature.two_stream import (
    BIAS_EPS,
    FEATURE_ARCHS,
    FUSIONS,
    HiddenTwoStream,
    build_backbone,
    center_channels,
)

__all__ = [
    "BIAS_EPS",
    "FEATURE_ARCHS",
    "FUSIONS",
    "BasicBlock3d",
    "HiddenTwoStream",
    "ResNet3d",
    "ResNetFeatures",
    "build_backbone",
    "center_channels",
    "resnet3d_34",
]
