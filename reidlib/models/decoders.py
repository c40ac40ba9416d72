"""HENet's recovery decoder (Sec. 3.1, Fig. 2): a feature vector back to a low-resolution image.

The paper says only that "a decoder is applied to reconstruct a low-resolution image by inputting
f_R" and that it "consists of 4 convolution-deconvolution groups"; the target resolution, how a
512-vector becomes a map, and the widths are not given, and "R16" is never defined. Our choices:

* a linear layer lifts ``f_R (B, D)`` to a seed map ``(B, D, h/16, w/16)``;
* four groups ``[Conv3x3-BN-ReLU, ConvTranspose4x4/2-BN-ReLU]`` of widths 256, 128, 64, 32, each
  doubling the resolution (2^4 = 16: our reading of "R16" is this 16x upsampling);
* a final Conv3x3 to 3 channels, no activation (the target is a normalised image, of either sign).

The output size ``(h, w)`` defaults to ``48 x 16``: 1/8 of HENet's 384x128 input and 1/4 of the CPU
chapters' 192x64 (both 3:1), so one decoder serves both; it must be a multiple of 16 on each side.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from reidlib.nn import check_shape

__all__ = ["RecoveryDecoder", "RECOVERY_SIZE"]

#: the decoder's default output ``(h, w)``
RECOVERY_SIZE = (48, 16)


class RecoveryDecoder(nn.Module):
    """``(B, in_dim) -> (B, out_channels, h, w)`` (see the module docstring).

    Args:
        in_dim: the recovery feature's size (HENet: 512).
        out_size: ``(h, w)``, each a multiple of ``2 ** len(widths)``.
        widths: the channels of the groups (one group per entry; HENet: 4 groups).
        out_channels: 3 (an RGB image).
    """

    def __init__(self, in_dim: int = 512, out_size: Sequence[int] = RECOVERY_SIZE,
                 widths: Sequence[int] = (256, 128, 64, 32), out_channels: int = 3) -> None:
        super().__init__()
        if not widths or any(int(w) < 1 for w in widths) or int(in_dim) < 1 or int(out_channels) < 1:
            raise ValueError(f"RecoveryDecoder: in_dim, out_channels and every width must be >= 1 (at least one "
                             f"group), got in_dim={in_dim}, widths={tuple(widths)}, out_channels={out_channels}")
        scale = 2 ** len(widths)
        size = tuple(out_size)
        h, w = (int(s) for s in size) if len(size) == 2 else (0, 0)
        if len(size) != 2 or h % scale or w % scale or h < scale or w < scale:
            raise ValueError(f"RecoveryDecoder: out_size must be (h, w) with both multiples of {scale} "
                             f"({len(widths)} groups each double the size), got {tuple(out_size)}; "
                             f"e.g. {(3 * scale, scale)}")
        self.in_dim, self.out_size, self.widths = int(in_dim), (h, w), tuple(int(x) for x in widths)
        self.seed_size = (h // scale, w // scale)
        self.lift = nn.Linear(self.in_dim, self.in_dim * self.seed_size[0] * self.seed_size[1])
        layers: list[nn.Module] = []
        channels = self.in_dim
        for width in self.widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                       nn.ConvTranspose2d(width, width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, int(out_channels), 3, padding=1))
        self.groups = nn.Sequential(*layers)

    def forward(self, f: Tensor) -> Tensor:
        check_shape(f, "B D", who="RecoveryDecoder", what="features", D=self.in_dim)
        seed = self.lift(f).view(f.shape[0], self.in_dim, *self.seed_size)
        return self.groups(seed)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_size={self.out_size}, widths={self.widths}"
