"""Batch norms folded into the convolutions before them, for inference.

In eval mode a BatchNorm is an affine map per channel; folded into the preceding
convolution's weights and bias it costs nothing, where otherwise it is one more pass over
every activation (a CPU's inference is memory-bound on these narrow networks). Folding is
exact up to float rounding (tests: within 1e-5 of the unfolded network).

Only pairs whose forward is known to apply the norm right after the convolution are
folded: adjacent (Conv2d, BatchNorm2d) in an ``nn.Sequential`` (TinyMotionNet's blocks,
ResNet's ``downsample``), and ``conv<i>``/``bn<i>`` of torchvision's ResNet blocks and of
deg's ResNet backbones. The folded network has other state-dict keys: fold a copy.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models.resnet import BasicBlock, Bottleneck

__all__ = ["fuse_conv_bn"]

_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))


def _pair_owners() -> tuple[type, ...]:
    from deg_core.models.feature.resnet import ResNetFeatures

    return (BasicBlock, Bottleneck, ResNetFeatures)


def fuse_conv_bn(model: nn.Module) -> int:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d into it, in place;
    the norm becomes ``nn.Identity``. Returns the number folded. ``model`` must be in eval
    mode (training would update the norms' statistics)."""
    if model.training:
        raise ValueError("fold batch norms in eval mode only (model.eval() first)")
    from deg_core.models.flow.pair_flow import FoldedConvBN  # folds itself on the fly

    owners = _pair_owners()
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential) and not isinstance(module, FoldedConvBN):
            for i in range(len(module) - 1):
                conv, bn = module[i], module[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, bn)
                    module[i + 1] = nn.Identity()
                    folded += 1
        elif isinstance(module, owners):
            for conv_name, bn_name in _PAIRS:
                c, b = getattr(module, conv_name, None), getattr(module, bn_name, None)
                if isinstance(c, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    setattr(module, conv_name, fuse_conv_bn_eval(c, b))
                    setattr(module, bn_name, nn.Identity())
                    folded += 1
    return folded
