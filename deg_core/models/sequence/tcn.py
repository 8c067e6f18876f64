"""TCN: a dilated temporal convolutional network, deg's modern alternative to TGMJ.

Shape contract: ``forward(x: (B, T, D)) -> logits (B, T, K)`` for any ``T >= 1``.

In the style of MS-TCN (Farha & Gall 2019) with pre-norm residual blocks::

    x -> Dropout(input_dropout) -> Linear(D, H)                       # 1x1 conv
      -> num_layers x [ y = LN -> GELU -> Conv1d(H, H, k, dilation=2^i) -> GELU -> Linear(H, H)
                            -> Dropout(block_dropout);  x = x + y ]
      -> LN -> GELU -> Dropout(dropout_p) -> Linear(H, K)

Dilations 1, 2, 4, ... grow the context exponentially: ``receptive_field = (k-1)/2 * (2^L - 1)``
frames each side, 63 for the defaults (k=3, L=6: ~2 s at 30 fps; TGMJ sees 21).

* Norm: LayerNorm over channels, per frame. GroupNorm/BatchNorm-over-time would pool statistics
  over the window, so an output would depend on the chunk it was computed in (chunked inference
  would not match whole-video inference, and training windows would leak into each other).
* Edges: every dilated convolution zero-pads ('same', symmetric, non-causal), so the model is
  time-translation equivariant more than ``receptive_field`` frames from either end.
* Parameters for D=1024, H=128, L=6: ``527,744 + 129 K`` (528,518 for K = 6): the input
  projection is 131,200 of them, each block 66,048.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from deg_core.models.sequence.tgmj import SequenceModel


class ResidualBlock(nn.Module):
    """Pre-norm dilated residual block on ``(B, T, H)`` (channels last)."""

    def __init__(self, hidden: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(hidden, hidden, kernel_size, dilation=dilation, padding=pad)
        self.pointwise = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        y = F.gelu(self.norm(x))
        y = F.gelu(self.conv(y.transpose(1, 2)).transpose(1, 2))
        return x + self.dropout(self.pointwise(y))


class TCN(SequenceModel):
    """Dilated residual temporal conv net (module doc). ``forward(x: (B, T, D)) -> (B, T, K)``."""

    arch = "tcn"

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 6,
        kernel_size: int = 3,
        input_dropout: float = 0.5,
        block_dropout: float = 0.1,
        dropout_p: float = 0.5,
    ):
        super().__init__(num_features, num_classes)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd (symmetric 'same' padding), got {kernel_size}"
            )
        if num_layers < 1 or hidden_size < 1:
            raise ValueError("num_layers and hidden_size must be >= 1")
        self.receptive_field = (kernel_size - 1) // 2 * (2**num_layers - 1)
        self.input_dropout = nn.Dropout(input_dropout)
        self.proj = nn.Linear(num_features, hidden_size)
        self.blocks = nn.Sequential(
            *(
                ResidualBlock(hidden_size, kernel_size, 2**i, block_dropout)
                for i in range(num_layers)
            )
        )
        self.norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout_p)
        self.head = nn.Linear(hidden_size, num_classes)

    def heads(self) -> list[nn.Linear]:
        return [self.head]

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, D) float features -> (B, T, K) logits."""
        self.check_input(x)
        h = self.blocks(self.proj(self.input_dropout(x)))
        return self.head(self.dropout(F.gelu(self.norm(h))))
