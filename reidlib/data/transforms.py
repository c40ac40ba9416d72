"""Image transforms for re-ID training: the standard pipeline and three erasing augmentations.

* :func:`build_transforms` — resize, horizontal flip, pad-and-crop, erasing, normalise
  (torchvision ``transforms.v2``).
* :class:`RandomErasing` — Zhong et al., "Random Erasing Data Augmentation" (AAAI 2020),
  Algorithm 1: one rectangle of area fraction ``s_e ~ U(s_l, s_h)`` and aspect ``r_e ~ U(r_1, 1/r_1)``.
* :class:`ProgressiveCutout` — Almazán et al., "Re-ID done right" (2018), Sec. 3.2: rectangles
  of random noise whose maximum size grows with training progress (:meth:`~ProgressiveCutout.set_progress`).
* :class:`RandomPolygonErasing` — Zhang et al., HENet (Sec. 3.3, Algorithm 1): the convex hull
  of ``n`` points in a box of sampled area and aspect.

Conventions shared by the three (choices where the papers are silent are marked *choice*):

* Images are float tensors ``(C, H, W)`` or batches ``(B, C, H, W)`` with pixel values in
  ``[0, 1]``: the erasers sit after ``ToDtype(float32, scale=True)`` and *before* ``Normalize``, so
  that a fill has its paper meaning ("mean" is the ImageNet mean colour, which normalises to 0;
  "random" is uniform over the pixel range, Zhong's ``[0, 255]``). Each sample of a batch gets its
  own draw.
* Randomness comes from ``generator`` (a ``torch.Generator``), or from ``seed`` (a private
  generator seeded once), or — neither given — from torch's global generator, which is what a
  training pipeline wants: per-sample seeding (``torch.manual_seed`` in each worker / per item)
  then controls the augmentation, and DataLoader workers do not replay one generator's copies.
* A box of height ``h`` and width ``w`` (integers, from rounding ``sqrt(S s_e r_e)`` and
  ``sqrt(S s_e / r_e)``) is accepted only if it fits in the image and its *rounded* area fraction
  ``h w / (H W)`` lies in the configured range (*choice*: so the range holds exactly, not up to
  rounding); after ``attempts`` rejections the image is left unchanged, as in Zhong's code.
* Each transform returns the erased image from ``forward``; :meth:`forward_with_mask` also
  returns the mask it applied, ``(H, W)`` (or ``(B, H, W)``) bool, True where erased, and
  ``last_mask`` keeps the last one. The ``*_mask`` functions draw masks alone.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import PIL.Image
import torch
from matplotlib.path import Path as MplPath
from scipy.spatial import ConvexHull
from torch import Tensor, nn
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2._utils import is_pure_tensor

from reidlib.registry import Registry

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "RandomPadCrop", "build_aspect_transforms",
    "build_misaligned_transforms", "build_occluded_transforms",
    "ErasingBox", "ErasingTransform", "ProgressiveCutout",
    "RandomErasing", "RandomPolygon", "RandomPolygonErasing", "apply_erasing", "build_transforms",
    "progressive_cutout_mask", "random_erasing_mask", "random_polygon_erasing_mask",
    "sample_erasing_box", "sample_random_polygon", "set_progress", "ERASERS", "build_eraser", "register_eraser",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Fill = Literal["mean", "zero", "random", "constant"]


# ---------------------------------------------------------------------------------------------
# parameter checks
def _is_real(value: Any) -> bool:
    """A real number (Python, numpy or a 0-d tensor), not a bool and not a string."""
    if isinstance(value, Tensor):
        return value.dim() == 0 and not value.dtype.is_complex and value.dtype != torch.bool
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _real(name: str, value: Any, what: str) -> float:
    if not _is_real(value):
        raise ValueError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    return float(value)


def _check_probability(name: str, value: float) -> float:
    p = _real(name, value, "a probability in [0, 1] (a number; True/False are not probabilities)")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return p


def _pair(name: str, value: Any, what: str) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray, Tensor)) or len(value) != 2 \
            or not all(_is_real(v) for v in value):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} must be {what} (finite numbers), got {value!r}")
    return low, high


def _check_scale(name: str, scale: Sequence[float]) -> tuple[float, float]:
    what = "(low, high) area fractions with 0 < low <= high <= 1"
    low, high = _pair(name, scale, what)
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"{name} must be {what}, got {scale!r}")
    return low, high


def _check_ratio(name: str, ratio: Sequence[float]) -> tuple[float, float]:
    what = "(low, high) aspect ratios (height / width) with 0 < low <= high"
    low, high = _pair(name, ratio, what)
    if not 0.0 < low <= high:
        raise ValueError(f"{name} must be {what}, got {ratio!r}")
    return low, high


def _is_integral(value: Any) -> bool:
    """An int, a numpy int or an integral float (``256.0``), not a bool."""
    return _is_real(value) and math.isfinite(float(value)) and float(value) == int(value)


def _check_int(name: str, value: Any, low: int) -> int:
    """An integer (an int, a numpy int or an integral float) >= ``low``."""
    if _is_integral(value) and int(value) >= low:
        return int(value)
    raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _check_size(height: int, width: int) -> tuple[int, int]:
    for name, value in (("height", height), ("width", width)):
        if not (_is_integral(value) and int(value) >= 1):
            raise ValueError(f"image size must be positive ints, got {name}={value!r} "
                             f"(height={height!r}, width={width!r})")
    return int(height), int(width)


def _check_layout(where: str, image: Tensor) -> tuple[int, ...]:
    """``image`` is ``(C, H, W)`` or ``(..., C, H, W)`` with ``C`` in 1..4 (grey, grey + alpha, RGB, RGBA);
    a channels-last ``(H, W, C)`` tensor is refused with the permutation that fixes it."""
    shape = tuple(image.shape)
    if image.dim() < 3:
        raise ValueError(f"{where} expects an image (C, H, W) or a batch (B, C, H, W), got shape {shape}")
    c = shape[-3]
    if 1 <= c <= 4:
        return shape
    if 1 <= shape[-1] <= 4:
        lead = ", ".join(str(i) for i in range(image.dim() - 3))
        perm = f"{lead + ', ' if lead else ''}{image.dim() - 1}, {image.dim() - 3}, {image.dim() - 2}"
        raise ValueError(f"{where} expects channels first, (C, H, W) with C = 1 or 3, got shape {shape}, which "
                         f"looks channels-last (H, W, C): permute it first, image.permute({perm})")
    raise ValueError(f"{where} expects an image (C, H, W) with C = 1 or 3 channels (4 with alpha), got shape "
                     f"{shape}: {c} channels")


def _make_generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is not None:
        return torch.Generator().manual_seed(int(seed))
    return generator


def _uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _randint(generator: torch.Generator | None, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]`` (inclusive)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


# ---------------------------------------------------------------------------------------------
# boxes (random erasing, cut-out) and polygons (random polygon erasing)
@dataclass(frozen=True)
class ErasingBox:
    """A rectangle of pixels ``[top, top + height) x [left, left + width)``."""

    top: int
    left: int
    height: int
    width: int

    def mask(self, height: int, width: int) -> Tensor:
        """``(height, width)`` bool, True inside the box."""
        m = torch.zeros(height, width, dtype=torch.bool)
        m[self.top:self.top + self.height, self.left:self.left + self.width] = True
        return m


def sample_erasing_box(height: int, width: int, *, scale: Sequence[float] = (0.02, 0.4),
                       ratio: Sequence[float] = (0.3, 1 / 0.3), generator: torch.Generator | None = None,
                       attempts: int = 100) -> ErasingBox | None:
    """Zhong et al., Algorithm 1, lines 5-13: a box with area ``S_e = s_e H W``, ``s_e ~ U(s_l, s_h)``
    and aspect ``r_e = H_e / W_e ~ U(r_1, r_2)`` (uniform, as in Zhong's code), so
    ``H_e = sqrt(S_e r_e)``, ``W_e = sqrt(S_e / r_e)``, placed uniformly where it fits.

    Returns ``None`` when ``attempts`` draws all fail (box larger than the image, or rounded area
    fraction outside ``scale``).
    """
    height, width = _check_size(height, width)
    sl, sh = _check_scale("scale", scale)
    r1, r2 = _check_ratio("ratio", ratio)
    attempts = _check_int("attempts", attempts, 1)
    area = height * width
    for _ in range(attempts):
        s_e = _uniform(generator, sl, sh)
        r_e = _uniform(generator, r1, r2)
        h = int(round(math.sqrt(s_e * area * r_e)))
        w = int(round(math.sqrt(s_e * area / r_e)))
        if not (1 <= h <= height and 1 <= w <= width and sl <= h * w / area <= sh):
            continue
        top = _randint(generator, 0, height - h)
        left = _randint(generator, 0, width - w)
        return ErasingBox(top, left, h, w)
    return None


@dataclass(frozen=True)
class RandomPolygon:
    """One draw of HENet's Algorithm 1: the ``box`` (pixel rectangle, centre ``P_c`` at its middle),
    the ``points`` ``(n, 2)`` as ``(x, y)`` in pixel-edge coordinates (``points[0] = P_c``) and the
    convex ``hull`` ``(m, 2)`` (counter-clockwise in ``(x, y)``; a pixel ``(i, j)`` has its centre at
    ``(j + 0.5, i + 0.5)``)."""

    box: ErasingBox
    points: np.ndarray
    hull: np.ndarray

    def mask(self, height: int, width: int) -> Tensor:
        """``(height, width)`` bool: the pixels whose centres lie inside the hull (matplotlib's
        ``Path.contains_points``); only the box's pixels are tested, so the mask is inside the box."""
        b = self.box
        ii, jj = np.mgrid[b.top:b.top + b.height, b.left:b.left + b.width]
        centres = np.stack([jj.ravel() + 0.5, ii.ravel() + 0.5], axis=1)
        inside = MplPath(np.vstack([self.hull, self.hull[:1]]), closed=True).contains_points(centres)
        m = torch.zeros(height, width, dtype=torch.bool)
        m[torch.from_numpy(ii.ravel()[inside]), torch.from_numpy(jj.ravel()[inside])] = True
        return m


def sample_random_polygon(height: int, width: int, *, n: int = 20, scale: Sequence[float] = (0.02, 0.45),
                          r: float = 0.35, generator: torch.Generator | None = None,
                          attempts: int = 100) -> RandomPolygon | None:
    """HENet, Algorithm 1, lines 5-21 (before the fill).

    The box: ``S_e = Rand(s_l, s_h) S``, ``r_e = Rand(r, 1/r)``, ``W_e = sqrt(S_e / r_e)``,
    ``H_e = sqrt(S_e r_e)`` (rounded to pixels like the authors' public code; accepted when
    it fits and its rounded area fraction is in ``[s_l, s_h]``), its centre ``P_c`` uniform among
    the positions where the box fits. The points: ``P_c`` and ``n - 1`` points uniform in the box.
    The algorithm's inner loop reads ``while cnt <= p``; that ``p`` is a typo for ``n`` (the loop
    draws the vertices ``p_cnt``; the erasing probability ``p`` was used on line 1). ``MinPolygon``
    is the convex hull (the public code fills the union of triangles of the points, which is
    contained in the hull and equals it up to rasterisation).

    Returns ``None`` when ``attempts`` box draws all fail.
    """
    if not _is_integral(n) or int(n) < 3:
        raise ValueError(f"n (number of polygon points) must be >= 3, got {n!r}")
    if not _is_real(r) or not 0.0 < float(r) <= 1.0:
        raise ValueError(f"r (aspect ratio bound, aspect in [r, 1/r]) must be in (0, 1], got {r!r}")
    box = sample_erasing_box(height, width, scale=scale, ratio=(r, 1.0 / r), generator=generator,
                             attempts=attempts)
    if box is None:
        return None
    centre = np.array([[box.left + box.width / 2.0, box.top + box.height / 2.0]])
    u = torch.rand(int(n) - 1, 2, generator=generator, dtype=torch.float64).numpy()
    others = np.array([box.left, box.top]) + u * np.array([box.width, box.height])
    points = np.vstack([centre, others])
    try:
        hull = points[ConvexHull(points).vertices]  # 2-D hulls are counter-clockwise
    except Exception:  # all points collinear (probability 0): an empty polygon
        hull = np.empty((0, 2))
    return RandomPolygon(box, points, hull)


def random_erasing_mask(height: int, width: int, *, scale: Sequence[float] = (0.02, 0.4),
                        ratio: Sequence[float] = (0.3, 1 / 0.3), generator: torch.Generator | None = None,
                        attempts: int = 100) -> Tensor:
    """``(height, width)`` bool: one random-erasing rectangle (:func:`sample_erasing_box`), or
    nothing when no box was accepted."""
    box = sample_erasing_box(height, width, scale=scale, ratio=ratio, generator=generator, attempts=attempts)
    return box.mask(height, width) if box is not None else torch.zeros(height, width, dtype=torch.bool)


def cutout_max_area(progress: float, *, scale: Sequence[float] = (0.02, 0.4), start_max: float = 0.1) -> float:
    """Largest area fraction of a cut-out region at training progress ``t`` (*choice*: linear,
    ``s_max(t) = s_0 + t (s_h - s_0)``; the paper says only that the maximum grows)."""
    t = _real("progress", progress, "a number in [0, 1]")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"progress must be in [0, 1], got {progress!r}")
    sl, sh = _check_scale("scale", scale)
    if not _is_real(start_max) or not sl <= float(start_max) <= sh:
        raise ValueError(f"start_max must lie in scale=({sl}, {sh}), got {start_max!r}")
    return start_max + t * (sh - start_max)


def progressive_cutout_mask(height: int, width: int, *, progress: float, scale: Sequence[float] = (0.02, 0.4),
                            start_max: float = 0.1, ratio: Sequence[float] = (0.3, 1 / 0.3),
                            num_regions: int = 1, generator: torch.Generator | None = None,
                            attempts: int = 100) -> Tensor:
    """``(height, width)`` bool: the union of ``num_regions`` boxes, each with area fraction in
    ``[s_l, s_max(t)]`` (:func:`cutout_max_area`)."""
    if not _is_integral(num_regions) or int(num_regions) < 1:
        raise ValueError(f"num_regions must be >= 1, got {num_regions!r}")
    s_max = cutout_max_area(progress, scale=scale, start_max=start_max)
    m = torch.zeros(height, width, dtype=torch.bool)
    for _ in range(int(num_regions)):
        m |= random_erasing_mask(height, width, scale=(scale[0], s_max), ratio=ratio, generator=generator,
                                 attempts=attempts)
    return m


def random_polygon_erasing_mask(height: int, width: int, *, n: int = 20, scale: Sequence[float] = (0.02, 0.45),
                                r: float = 0.35, generator: torch.Generator | None = None,
                                attempts: int = 100) -> Tensor:
    """``(height, width)`` bool: one random polygon (:func:`sample_random_polygon`) rasterised."""
    poly = sample_random_polygon(height, width, n=n, scale=scale, r=r, generator=generator, attempts=attempts)
    return poly.mask(height, width) if poly is not None else torch.zeros(height, width, dtype=torch.bool)


# ---------------------------------------------------------------------------------------------
# fills
def _fill_values(fill: str, shape: tuple[int, ...], *, value: Sequence[float], value_range: tuple[float, float],
                 generator: torch.Generator | None, dtype: torch.dtype) -> Tensor:
    """A tensor broadcastable to an image of ``shape`` ``(C, H, W)``."""
    c = shape[0]
    if fill == "zero":
        return torch.zeros(c, 1, 1, dtype=dtype)
    if fill in ("mean", "constant"):
        if len(value) != c:
            raise ValueError(f"fill value has {len(value)} entries, the image has {c} channels: "
                             f"pass value= with {c} entries")
        return torch.tensor(value, dtype=dtype).view(c, 1, 1)
    lo, hi = value_range
    return lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=torch.float32).to(dtype)


def apply_erasing(image: Tensor, mask: Tensor, fill_values: Tensor) -> Tensor:
    """``image`` ``(..., C, H, W)`` with the pixels where ``mask`` ``(..., H, W)`` is True replaced by
    ``fill_values`` (broadcastable to the image).

    Raises ``ValueError`` for a channels-last image, a mask of another shape or of another dtype
    than bool, or fill values that do not broadcast to the image."""
    for name, value in (("image", image), ("mask", mask), ("fill_values", fill_values)):
        if not isinstance(value, Tensor):
            raise TypeError(f"apply_erasing: {name} must be a torch.Tensor, got {type(value).__name__}")
    shape = _check_layout("apply_erasing", image)
    want = shape[:-3] + shape[-2:]
    if tuple(mask.shape) != want:
        raise ValueError(f"apply_erasing: mask must have shape {want} (the image's (..., H, W)) for an image "
                         f"of shape {shape}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"apply_erasing: mask must be a bool tensor (True where erased), got dtype {mask.dtype}")
    try:
        if torch.broadcast_shapes(tuple(fill_values.shape), shape) != shape:
            raise RuntimeError
    except RuntimeError:
        raise ValueError(f"apply_erasing: fill_values of shape {tuple(fill_values.shape)} do not broadcast to the "
                         f"image's shape {shape} (e.g. (C, 1, 1) per channel, or (C, H, W))") from None
    return torch.where(mask.unsqueeze(-3), fill_values.to(image.dtype), image)


# ---------------------------------------------------------------------------------------------
# the transforms
class ErasingTransform(v2.Transform):
    """Base of the three erasers: per sample, with probability ``p`` draw a mask
    (:meth:`sample_mask`) and fill it. Subclasses define :meth:`sample_mask` and the fills."""

    fills: tuple[str, ...] = ("mean", "zero", "random")
    # images only: masks, boxes and labels in a v2 sample pass through unchanged
    _transformed_types = (tv_tensors.Image, is_pure_tensor)

    def __init__(self, p: float, fill: str, value: Sequence[float], value_range: tuple[float, float],
                 generator: torch.Generator | None, seed: int | None, attempts: int) -> None:
        super().__init__()
        name = type(self).__name__
        self.p = _check_probability("p", p)
        if not isinstance(fill, str) or fill not in self.fills:
            raise ValueError(f"fill must be one of {self.fills}, got {fill!r}")
        self.fill = fill
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray, Tensor)) \
                or not all(_is_real(v) and math.isfinite(float(v)) for v in value):
            raise ValueError(f"{name}: value must be one fill number per channel (e.g. {IMAGENET_MEAN}), got {value!r}")
        self.value = tuple(float(v) for v in value)
        low, high = _pair("value_range", value_range, "(low, high) with low <= high")
        if not low <= high:
            raise ValueError(f"value_range must be (low, high) with low <= high, got {value_range!r}")
        self.value_range = (low, high)
        self.attempts = _check_int("attempts", attempts, 1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"{name}: generator must be a torch.Generator, got {type(generator).__name__}")
        if seed is not None and not _is_integral(seed):
            raise ValueError(f"{name}: seed must be an int, got {seed!r}")
        self.generator = _make_generator(generator, seed)
        self.last_mask: Tensor | None = None

    def sample_mask(self, height: int, width: int) -> Tensor:
        """One ``(height, width)`` bool mask (always applied; ``p`` is drawn by the caller)."""
        raise NotImplementedError

    def check_inputs(self, flat_inputs: list[Any]) -> None:
        for inpt in flat_inputs:
            if isinstance(inpt, PIL.Image.Image):
                raise TypeError(f"{type(self).__name__} expects a tensor image (C, H, W), got a PIL image: "
                                "put v2.ToImage() and v2.ToDtype(torch.float32, scale=True) before it")

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        if not flat_inputs:  # nothing to erase in this sample
            return {}
        image = flat_inputs[0]
        if not isinstance(image, Tensor) or image.dim() < 3:
            grey = " (a grey image (H, W) needs a channel: image.unsqueeze(0))" if isinstance(image, Tensor) \
                and image.dim() == 2 else ""
            raise TypeError(f"{type(self).__name__} expects a tensor image (C, H, W) or batch (B, C, H, W), got "
                            f"{type(image).__name__}{tuple(image.shape) if isinstance(image, Tensor) else ''}{grey}: "
                            "put v2.ToImage() and v2.ToDtype(torch.float32, scale=True) before it")
        if not image.is_floating_point():
            raise TypeError(f"{type(self).__name__} expects a float image in [0, 1], got dtype {image.dtype}: "
                            "put v2.ToDtype(torch.float32, scale=True) before it")
        _check_layout(type(self).__name__, image)
        *batch, c, h, w = image.shape
        masks, fills = [], []
        for _ in range(math.prod(batch)):
            if float(torch.rand((), generator=self.generator)) < self.p:
                masks.append(self.sample_mask(h, w))
                fill = _fill_values(self.fill, (c, h, w), value=self.value, value_range=self.value_range,
                                    generator=self.generator, dtype=image.dtype)
            else:
                masks.append(torch.zeros(h, w, dtype=torch.bool))
                fill = torch.zeros(c, 1, 1, dtype=image.dtype)  # unused: nothing is erased
            fills.append(fill.expand(c, h, w))
        mask = torch.stack(masks).view(*batch, h, w)
        self.last_mask = mask
        return {"mask": mask, "fill": torch.stack(fills).view(*batch, c, h, w)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        out = apply_erasing(inpt.as_subclass(Tensor), params["mask"].to(inpt.device), params["fill"].to(inpt.device))
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

    def forward_with_mask(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """The erased image and the mask applied: ``(H, W)`` bool for ``(C, H, W)``, ``(B, H, W)``
        for a batch; all False where nothing was erased."""
        out = self(image)
        assert self.last_mask is not None
        return out, self.last_mask


class RandomErasing(ErasingTransform):
    """Random erasing (Zhong et al., AAAI 2020, Algorithm 1).

    With probability ``p`` one rectangle of area fraction ``s_e ~ U(s_l, s_h)`` (``scale``) and
    aspect ``r_e = H_e / W_e ~ U(r_1, 1/r_1)`` (``ratio``) is erased (:func:`sample_erasing_box`).
    ``fill``: ``'random'`` (per pixel uniform in ``value_range``, the paper's default), ``'mean'``
    (the per-channel ``value``, default the ImageNet mean: RE-M), ``'zero'`` (RE-0).
    """

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.4), ratio: Sequence[float] = (0.3, 1 / 0.3),
                 fill: Fill = "random", *, value: Sequence[float] = IMAGENET_MEAN,
                 value_range: tuple[float, float] = (0.0, 1.0), generator: torch.Generator | None = None,
                 seed: int | None = None, attempts: int = 100) -> None:
        super().__init__(p, fill, value, value_range, generator, seed, attempts)
        self.scale = _check_scale("scale", scale)
        self.ratio = _check_ratio("ratio", ratio)

    def sample_mask(self, height: int, width: int) -> Tensor:
        return random_erasing_mask(height, width, scale=self.scale, ratio=self.ratio, generator=self.generator,
                                   attempts=self.attempts)


class ProgressiveCutout(ErasingTransform):
    """Progressive cut-out ("Re-ID done right", Sec. 3.2 and 3.3): with probability ``p``,
    ``num_regions`` rectangles filled with random noise (uniform in ``value_range``), each of area
    fraction ``U(s_l, s_max(t))`` and aspect ``U(ratio)``, where the maximum
    ``s_max(t) = s_0 + t (s_h - s_0)`` grows with the training progress ``t`` in ``[0, 1]``
    (:meth:`set_progress`; ``s_0 = start_max``, ``(s_l, s_h) = scale``).

    The paper gives no schedule, sizes, probability or region count: linear growth, ``s_0 = 0.1``,
    Zhong's ``scale`` and ``ratio``, ``p = 0.5`` and one region are choices.

    The progress is kept in a shared-memory tensor, so :meth:`set_progress` in the main process
    reaches DataLoader worker processes, persistent ones included.
    """

    fills = ("random", "mean", "zero")

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.4), ratio: Sequence[float] = (0.3, 1 / 0.3),
                 *, start_max: float = 0.1, num_regions: int = 1, progress: float = 0.0, fill: Fill = "random",
                 value: Sequence[float] = IMAGENET_MEAN, value_range: tuple[float, float] = (0.0, 1.0),
                 generator: torch.Generator | None = None, seed: int | None = None, attempts: int = 100) -> None:
        super().__init__(p, fill, value, value_range, generator, seed, attempts)
        self.scale = _check_scale("scale", scale)
        self.ratio = _check_ratio("ratio", ratio)
        cutout_max_area(0.0, scale=self.scale, start_max=start_max)  # validates start_max
        self.start_max = float(start_max)
        if not _is_integral(num_regions) or int(num_regions) < 1:
            raise ValueError(f"num_regions must be >= 1, got {num_regions!r}")
        self.num_regions = int(num_regions)
        self._progress = torch.zeros((), dtype=torch.float64).share_memory_()
        self.set_progress(progress)

    @property
    def progress(self) -> float:
        return float(self._progress)

    def set_progress(self, t: float) -> None:
        """Training progress ``t`` in ``[0, 1]`` (e.g. ``epoch / (epochs - 1)``)."""
        if not _is_real(t) or not 0.0 <= float(t) <= 1.0:
            raise ValueError(f"progress t must be in [0, 1], got {t!r}")
        self._progress.fill_(float(t))  # in place: workers share this storage

    @property
    def max_area(self) -> float:
        """``s_max(t)`` at the current progress."""
        return cutout_max_area(self.progress, scale=self.scale, start_max=self.start_max)

    def sample_mask(self, height: int, width: int) -> Tensor:
        return progressive_cutout_mask(height, width, progress=self.progress, scale=self.scale,
                                       start_max=self.start_max, ratio=self.ratio, num_regions=self.num_regions,
                                       generator=self.generator, attempts=self.attempts)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, progress={self.progress}"


class RandomPolygonErasing(ErasingTransform):
    """Random polygon erasing (HENet, Sec. 3.3, Algorithm 1; defaults ``p = 0.5``, ``s_l = 0.02``,
    ``s_h = 0.45``, ``r = 0.35``, ``n = 20`` as in the paper).

    With probability ``p`` the convex hull of ``n`` points in a box of sampled area and aspect
    (:func:`sample_random_polygon`; the paper's loop ``cnt <= p`` is a typo for ``cnt <= n``) is
    erased. ``fill``: ``'constant'`` — one value per channel (``value``, default the ImageNet
    mean; the authors' code also fills a per-channel constant), or ``'random'`` — per pixel
    uniform in ``value_range`` (the paper's text: "a random value in [0, 255]").
    """

    fills = ("constant", "mean", "random", "zero")

    def __init__(self, p: float = 0.5, n: int = 20, sl: float = 0.02, sh: float = 0.45, r: float = 0.35,
                 fill: Literal["constant", "random", "zero"] = "constant", *, value: Sequence[float] = IMAGENET_MEAN,
                 value_range: tuple[float, float] = (0.0, 1.0), generator: torch.Generator | None = None,
                 seed: int | None = None, attempts: int = 100) -> None:
        super().__init__(p, fill, value, value_range, generator, seed, attempts)
        if not _is_integral(n) or int(n) < 3:
            raise ValueError(f"n (number of polygon points) must be >= 3, got {n!r}")
        if not _is_real(r) or not 0.0 < float(r) <= 1.0:
            raise ValueError(f"r (aspect ratio bound, aspect in [r, 1/r]) must be in (0, 1], got {r!r}")
        self.n, self.r = int(n), float(r)
        self.sl, self.sh = _check_scale("(sl, sh)", (sl, sh))
        self.last_polygon: RandomPolygon | None = None

    def sample_polygon(self, height: int, width: int) -> RandomPolygon | None:
        poly = sample_random_polygon(height, width, n=self.n, scale=(self.sl, self.sh), r=self.r,
                                     generator=self.generator, attempts=self.attempts)
        self.last_polygon = poly
        return poly

    def sample_mask(self, height: int, width: int) -> Tensor:
        poly = self.sample_polygon(height, width)
        return poly.mask(height, width) if poly is not None else torch.zeros(height, width, dtype=torch.bool)


# ---------------------------------------------------------------------------------------------
# the pipeline
# The erasers by name: a paper adds its own with @register_eraser("name") on an ErasingTransform subclass.
ERASERS: Registry[type] = Registry("eraser", normalize=lambda s: s.lower().replace("-", "_").replace(" ", "_"))
ERASERS.add("random_erasing", RandomErasing, "re")
ERASERS.add("progressive_cutout", ProgressiveCutout, "cutout")
ERASERS.add("random_polygon_erasing", RandomPolygonErasing, "rpe")


def register_eraser(name: str, *aliases: str):
    """Decorator registering an :class:`ErasingTransform` subclass under ``name``."""
    return ERASERS.register(name, *aliases)


def build_eraser(name: str, **options: Any) -> ErasingTransform:
    """An eraser by name (``random_erasing``, ``progressive_cutout``, ``random_polygon_erasing``; aliases
    ``re``, ``cutout``, ``rpe``), built with its options (``p``, ``scale``, ...)."""
    return ERASERS.build(name, **options)


def build_transforms(height: int, width: int, *, train: bool, random_erasing: float = 0.5,
                     progressive_cutout: float = 0.0, random_polygon_erasing: float = 0.0, flip: float = 0.5,
                     padding: int = 10, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                     erasing_fill: Fill = "mean", cutout_options: dict[str, Any] | None = None,
                     polygon_options: dict[str, Any] | None = None) -> v2.Compose:
    """The re-ID pipeline for a PIL image (or uint8/float tensor) to a normalised ``(3, H, W)`` tensor.

    Training: resize to ``(height, width)``, horizontal flip (prob. ``flip``), zero-pad by
    ``padding`` and random-crop back, to float in ``[0, 1]``, then the erasers whose probability
    is > 0 (:class:`RandomErasing` with ``erasing_fill``, :class:`RandomPolygonErasing`,
    :class:`ProgressiveCutout`; ``*_options`` go to their constructors), then normalise with
    ``mean``/``std``. Test: resize, to float, normalise. The erasers use torch's global
    generator (seed per sample or per worker); :func:`set_progress` drives the cut-out.
    """
    height, width = _check_size(height, width)
    padding = _check_int("padding", padding, 0)
    for name, value in (("random_erasing", random_erasing), ("progressive_cutout", progressive_cutout),
                        ("random_polygon_erasing", random_polygon_erasing), ("flip", flip)):
        _check_probability(name, value)
    mean, std = _check_mean_std(mean, std)
    if not isinstance(erasing_fill, str) or erasing_fill not in RandomErasing.fills:
        raise ValueError(f"erasing_fill must be one of {RandomErasing.fills}, got {erasing_fill!r}")
    _check_eraser_options("cutout_options", cutout_options, ProgressiveCutout, ("p",))
    _check_eraser_options("polygon_options", polygon_options, RandomPolygonErasing, ("p", "value"))
    steps: list[nn.Module] = [v2.ToImage(), v2.Resize((int(height), int(width)), antialias=True)]
    if train:
        if flip > 0:
            steps.append(v2.RandomHorizontalFlip(flip))
        if padding > 0:
            steps += [v2.Pad(int(padding)), v2.RandomCrop((int(height), int(width)))]
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if train:
        if random_erasing > 0:
            steps.append(RandomErasing(random_erasing, fill=erasing_fill, value=mean))
        if random_polygon_erasing > 0:
            steps.append(RandomPolygonErasing(random_polygon_erasing, value=mean, **(polygon_options or {})))
        if progressive_cutout > 0:
            steps.append(ProgressiveCutout(progressive_cutout, **(cutout_options or {})))
    steps.append(v2.Normalize(list(mean), list(std)))
    return v2.Compose(steps)


def build_misaligned_transforms(height: int, width: int, amount: float, *, mean: Sequence[float] = IMAGENET_MEAN,
                                std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """The test pipeline of :func:`build_transforms` with the box *misaligned*: after the resize, the crop
    window moves by a uniform offset of up to ``amount`` of the height vertically and half of it horizontally
    (``v2.RandomCrop`` over an edge-replicated border, so the box shows more of one side and loses the
    other, as a detector's box cut too high or too low does). ``amount`` lies in ``[0, 1)``; 0 is the plain
    test pipeline. The offsets come from torch's global generator: seed it (or the loader's workers) for
    the same offsets in every run."""
    height, width = _check_size(height, width)
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < 1:
        raise ValueError(f"misalignment amount must be a number in [0, 1) (a fraction of the box height), got {amount!r}")
    mean, std = _check_mean_std(mean, std)
    dy, dx = round(amount * height), round(amount * width / 2)
    steps: list[nn.Module] = [v2.ToImage(), v2.Resize((int(height), int(width)), antialias=True)]
    if dy or dx:
        steps.append(v2.RandomCrop((int(height), int(width)), padding=[dx, dy], padding_mode="edge"))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


def build_occluded_transforms(height: int, width: int, eraser: str, area: float, *, n: int = 20,
                              mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """The test pipeline of :func:`build_transforms` with every image occluded (HENet, Fig. 5): after the resize,
    one region erased with probability 1 and the mean colour, ``eraser`` ``"random_erasing"`` (a rectangle of
    ``area`` of the image, within 10 %, aspect as :class:`RandomErasing`'s) or ``"random_polygon_erasing"`` (the convex
    hull of ``n`` points in such a rectangle, as :class:`RandomPolygonErasing`: the polygon covers less than
    ``area``). ``area`` lies in ``(0, 1]``. The regions come from torch's global generator: seed it for the same
    regions in every run."""
    height, width = _check_size(height, width)
    if isinstance(area, bool) or not isinstance(area, (int, float)) or not 0 < area <= 1:
        raise ValueError(f"occlusion area must be a number in (0, 1] (a fraction of the image), got {area!r}")
    mean, std = _check_mean_std(mean, std)
    name = ERASERS.canonical(eraser) if eraser in ERASERS else eraser
    # the box's area is drawn within 10 % of ``area``: the samplers accept a box whose area *rounded to pixels*
    # lies in the range, which a range of zero width almost never contains
    low, high = area * 0.9, min(1.0, area * 1.1)
    if name == "random_erasing":
        erase: nn.Module = RandomErasing(1.0, scale=(low, high), fill="mean", value=mean)
    elif name == "random_polygon_erasing":
        erase = RandomPolygonErasing(1.0, n=n, sl=low, sh=high, value=mean)
    else:
        raise ValueError(f"eraser must be 'random_erasing' or 'random_polygon_erasing', got {eraser!r}")
    return v2.Compose([v2.ToImage(), v2.Resize((int(height), int(width)), antialias=True),
                       v2.ToDtype(torch.float32, scale=True), erase, v2.Normalize(list(mean), list(std))])


class RandomPadCrop(nn.Module):
    """Zero-pad by ``padding`` px and crop back to the image's *own* size at a random offset: the pad-and-crop
    of :func:`build_transforms` for images that do not share one size. ``(..., C, H, W) -> (..., C, H, W)``;
    the offset is drawn from torch's global generator (the trainer seeds it per sample)."""

    def __init__(self, padding: int) -> None:
        super().__init__()
        self.padding = _check_int("padding", padding, 0)

    def forward(self, image: Tensor) -> Tensor:
        if self.padding == 0:
            return image
        h, w = image.shape[-2:]
        pad = self.padding
        padded = torch.nn.functional.pad(image, (pad, pad, pad, pad))
        top, left = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,)))
        return padded[..., top:top + h, left:left + w]

    def extra_repr(self) -> str:
        return f"padding={self.padding}"


def build_aspect_transforms(largest_side: int, *, train: bool, flip: float = 0.0, padding: int = 0,
                            progressive_cutout: float = 0.0, cutout_options: dict[str, Any] | None = None,
                            mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """The aspect-preserving pipeline ("Re-ID done right", Sec. 3.2 "Image size"): resize each image so that
    its *largest* side is ``largest_side`` px, keeping its aspect ratio (no fixed box: images of different
    shapes come out at different sizes, :func:`reidlib.data.collate_images` batches them); in training a
    horizontal flip (prob. ``flip``), a ``padding`` px pad-and-crop at the image's own size
    (:class:`RandomPadCrop`), :class:`ProgressiveCutout` (prob. ``progressive_cutout``, ``cutout_options``)
    on ``[0, 1]`` values, i.e. before the normalisation with ``mean``/``std``."""
    if not (_is_integral(largest_side) and int(largest_side) >= 1):
        raise ValueError(f"largest_side must be a positive int (px), got {largest_side!r}")
    padding = _check_int("padding", padding, 0)
    for name, value in (("progressive_cutout", progressive_cutout), ("flip", flip)):
        _check_probability(name, value)
    mean, std = _check_mean_std(mean, std)
    _check_eraser_options("cutout_options", cutout_options, ProgressiveCutout, ("p",))
    steps: list[nn.Module] = [v2.ToImage(), v2.Resize(size=None, max_size=int(largest_side), antialias=True)]
    if train:
        if flip > 0:
            steps.append(v2.RandomHorizontalFlip(flip))
        if padding > 0:
            steps.append(RandomPadCrop(padding))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if train and progressive_cutout > 0:
        steps.append(ProgressiveCutout(progressive_cutout, **(cutout_options or {})))
    steps.append(v2.Normalize(list(mean), list(std)))
    return v2.Compose(steps)


def _check_mean_std(mean: Any, std: Any) -> tuple[list[float], list[float]]:
    """3 finite numbers each (the pipeline makes RGB images); ``std`` > 0."""
    out = []
    for name, value, example in (("mean", mean, IMAGENET_MEAN), ("std", std, IMAGENET_STD)):
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray, Tensor)) \
                or len(value) != 3 or not all(_is_real(v) and math.isfinite(float(v)) for v in value):
            raise ValueError(f"{name} must be 3 numbers, one per RGB channel (e.g. {name}={example}), got {value!r}")
        out.append([float(v) for v in value])
    if not all(v > 0 for v in out[1]):
        raise ValueError(f"std must be > 0 in every channel (Normalize divides by it), got std={std!r}")
    return out[0], out[1]


def _check_eraser_options(name: str, options: Any, cls: type, taken: tuple[str, ...]) -> None:
    """``options`` (a dict for ``cls``'s constructor) without keys build_transforms sets itself."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise ValueError(f"{name} must be a dict of {cls.__name__} options, got {type(options).__name__} {options!r}")
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    if unknown := sorted(set(options) - known):
        raise ValueError(f"{name}: unknown {cls.__name__} option(s) {unknown}; known: {sorted(known - set(taken))}")
    if clash := sorted(set(options) & set(taken)):
        what = {"p": "the probability is build_transforms' own argument", "value": "the fill is build_transforms' mean"}
        raise ValueError(f"{name}: {clash} cannot be set here ({'; '.join(what[k] for k in clash)})")


def set_progress(transform: nn.Module, t: float) -> int:
    """Call :meth:`ProgressiveCutout.set_progress` on every cut-out inside ``transform`` (a
    pipeline or a single transform); returns how many were updated."""
    found: list[ProgressiveCutout] = []
    stack: list[Any] = [transform]
    while stack:  # v2.Compose keeps its steps in a plain list, not as submodules
        node = stack.pop()
        if isinstance(node, ProgressiveCutout) and all(node is not f for f in found):
            found.append(node)
        if isinstance(node, nn.Module):
            stack.extend(m for m in node.modules() if m is not node)
        stack.extend(getattr(node, "transforms", None) or [])
    for m in found:
        m.set_progress(t)
    return len(found)
