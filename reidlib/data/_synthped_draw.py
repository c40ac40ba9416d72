"""Drawing for :mod:`reidlib.data.synthped`: one pedestrian, seen by one camera, as one image.

Internal module. A person is a few dozen flat shapes (PIL ``ImageDraw`` polygons and ellipses)
in *person coordinates* ``(u, v)``: ``v`` runs from the top of the head (0) to the soles (1),
``u`` is horizontal in the same unit, so a person of height 1 fills a 2:1 box whose width is
0.5. Every shape is drawn twice, once in colour and once into a label image whose value is
the bit set of the parts the pixel belongs to (:data:`PART_BITS`); later shapes overwrite
earlier ones, so the label image holds exactly what is *visible*. Drawing happens at
``supersample`` times the output size and is box-filtered down (anti-aliasing); the camera
then adds light, colour cast, blur, noise and JPEG compression to the colour image only.
"""
from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# One bit per part. A detail's pixels also carry the bit of the coarse part it sits on
# (a logo is part of the upper body), so coarse masks are unions and details are subsets.
PART_BITS: dict[str, int] = {
    "head": 1, "upper_body": 2, "lower_body": 4, "bag": 8,
    "logo": 16, "stripe": 32, "shoes": 64, "strap": 128,
}
HEAD, UPPER, LOWER, BAG = 1, 2, 4, 8
LOGO, STRIPE, SHOES, STRAP = UPPER | 16, UPPER | 32, LOWER | 64, UPPER | 128
_OCCLUDER = 255  # only inside the drawing: opaque, but no part (stored as 0)

VIEWS = ("front", "back", "side")
LOGO_SHAPES = ("circle", "square", "triangle", "diamond")
BACKGROUNDS = ("pavement", "grass", "wall", "crosswalk", "shopfront", "gravel")

Color = tuple[int, int, int]


@dataclass(frozen=True)
class Look:
    """Everything that fixes how one identity looks (coarse appearance + small details).

    Coarse fields mirror Market-1501's 27 attributes; ``logo``, ``stripe``, ``shoe_color`` and
    ``strap`` are the identity-specific details (``None`` = absent).
    """

    female: bool
    age: int                    # Market: 1 young, 2 teenager, 3 adult, 4 old
    long_hair: bool
    short_sleeves: bool
    dress: bool
    short_lower: bool
    hat: bool
    backpack: bool
    bag: bool
    handbag: bool
    up_color: Color
    down_color: Color
    skin: Color
    hair_color: Color
    hat_color: Color
    bag_color: Color
    build: float                # width multiplier, ~0.9..1.1
    bag_side: int               # +1 / -1: which hip the shoulder bag hangs on
    logo: tuple[str, Color] | None           # (shape, colour), on the chest, front view only
    stripe: tuple[float, Color] | None       # (height in [0,1] shoulders->waist, colour)
    shoe_color: Color
    strap: tuple[int, Color] | None          # (direction +1/-1, colour), front and back views


@dataclass(frozen=True)
class Camera:
    """One camera's fixed settings (the manifest records them)."""

    index: int                  # 0-based
    gain: float                 # light level
    cast: tuple[float, float, float]  # RGB multipliers (colour cast)
    gradient: tuple[float, float]     # horizontal / vertical light fall-off
    view_probs: tuple[float, float, float]  # P(front), P(back), P(side)
    scale: float                # mean person height / image height
    misalign: float             # std of the crop misalignment (fraction of width)
    blur: float                 # Gaussian blur sigma at 128 px height
    noise: float                # sensor noise std (grey levels)
    jpeg_quality: int
    background: str             # one of BACKGROUNDS
    occluder_prob: float


@dataclass(frozen=True)
class Shot:
    """What one image shows: a known identity, a one-off distractor person, or junk."""

    look: Look | None           # None for distractors / junk (drawn from the shot's own rng)
    kind: str                   # "identity" | "distractor" | "junk"


# ------------------------------------------------------------------------------------------
# Colours


def jitter_color(rng: np.random.Generator, base: Color, amount: float = 18.0) -> Color:
    """A shade of ``base``: per-channel jitter plus a brightness factor, clipped to 0..255."""
    c = np.asarray(base, float) * rng.uniform(0.85, 1.12) + rng.normal(0.0, amount / 2, 3)
    return tuple(int(x) for x in np.clip(np.rint(c), 0, 255))  # type: ignore[return-value]


def color_distance(a: Color, b: Color) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=float)))


# ------------------------------------------------------------------------------------------
# The canvas: colour + part labels, drawn in parallel


class _Canvas:
    def __init__(self, width: int, height: int, ss: int, cx: float, top: float, ph: float, facing: int) -> None:
        self.ss = ss
        self.rgb = Image.new("RGB", (width * ss, height * ss))
        self.label = Image.new("L", (width * ss, height * ss))
        self._drgb = ImageDraw.Draw(self.rgb)
        self._dlab = ImageDraw.Draw(self.label)
        self.cx, self.top = cx * width * ss, top * height * ss
        self.sx, self.sy = ph * width * ss * 2.0 * facing, ph * height * ss
        self.W, self.H = width * ss, height * ss

    def xy(self, pts: list[tuple[float, float]]) -> list[float]:
        out: list[float] = []
        for u, v in pts:
            out.append(self.cx + u * self.sx)
            out.append(self.top + v * self.sy)
        return out

    def poly(self, pts: list[tuple[float, float]], color: Color, label: int) -> None:
        xy = self.xy(pts)
        self._drgb.polygon(xy, fill=color)
        self._dlab.polygon(xy, fill=label)

    def ellipse(self, cu: float, cv: float, ru: float, rv: float, color: Color, label: int) -> None:
        x0, y0, x1, y1 = self.xy([(cu - ru, cv - rv), (cu + ru, cv + rv)])
        box = [min(x0, x1), y0, max(x0, x1), y1]
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            return
        self._drgb.ellipse(box, fill=color)
        self._dlab.ellipse(box, fill=label)

    def segment(self, p0: tuple[float, float], p1: tuple[float, float], hw: float, color: Color, label: int) -> None:
        """A thick line as a quad; ``hw`` is the half width in horizontal person units."""
        (u0, v0), (u1, v1) = p0, p1
        du, dv = u1 - u0, (v1 - v0)
        n = math.hypot(du, dv) or 1.0
        nu, nv = -dv / n * hw, du / n * hw
        self.poly([(u0 + nu, v0 + nv), (u1 + nu, v1 + nv), (u1 - nu, v1 - nv), (u0 - nu, v0 - nv)], color, label)

    def pixel_poly(self, xy: list[float], color: Color, label: int) -> None:
        """A polygon in output-image pixel coordinates (occluders)."""
        xy = [c * self.ss for c in xy]
        self._drgb.polygon(xy, fill=color)
        self._dlab.polygon(xy, fill=label)


# ------------------------------------------------------------------------------------------
# The person


@dataclass(frozen=True)
class Pose:
    view: str        # front | back | side
    facing: int      # +1 / -1 (mirror); back views are mirrored fronts
    stride: float    # leg spread (person units)
    swing: float     # arm swing (person units)


def _landmarks(look: Look) -> dict[str, float]:
    hh = {1: 0.165, 2: 0.135, 3: 0.13, 4: 0.13}[look.age]
    vsh = hh + 0.035
    rest = 1.0 - vsh
    b = look.build
    return dict(
        hh=hh, vsh=vsh, waist=vsh + 0.38 * rest, crotch=vsh + 0.48 * rest, knee=vsh + 0.72 * rest,
        ankle=vsh + 0.95 * rest, elbow=vsh + 0.21 * rest, wrist=vsh + 0.42 * rest,
        sh=(0.104 if look.female else 0.118) * b, wa=(0.081 if look.female else 0.090) * b,
        hip=(0.102 if look.female else 0.095) * b,
        rx=0.058 if look.age == 1 else 0.047, ry=hh / 2,
    )


def _legs(c: _Canvas, look: Look, L: dict[str, float], pose: Pose, side: bool) -> list[float]:
    """Legs, lower garment and shoes; returns the ankle positions (u)."""
    hip, wa = L["hip"] * (0.7 if side else 1.0), L["wa"] * (0.7 if side else 1.0)
    if side:
        ankles = [-pose.stride, pose.stride]          # far leg back, near leg forward
        tops = [-0.01, 0.01]
    else:
        ankles = [-(hip * 0.45 + pose.stride), hip * 0.45 + pose.stride]
        tops = [-hip * 0.5, hip * 0.5]
    lw_top, lw_bot = (0.040 if side else 0.036), 0.024
    garment, skin = look.down_color, look.skin
    # Legs: garment down to the hem, skin below it (shorts, dresses).
    if look.dress:
        hem = L["knee"] - 0.02 if look.short_lower else L["ankle"] - 0.05
    else:
        hem = L["knee"] - 0.03 if look.short_lower else L["ankle"]
    for top_u, ank in zip(tops, ankles):
        def at(v: float, top_u: float = top_u, ank: float = ank) -> tuple[float, float]:
            t = (v - L["waist"]) / (L["ankle"] - L["waist"])
            return top_u + t * (ank - top_u), lw_top + t * (lw_bot - lw_top)
        u0, w0 = at(L["waist"])
        uh, wh = at(hem)
        u1, w1 = at(L["ankle"])
        if look.dress:
            c.poly([(u0 - w0, L["crotch"]), (u0 + w0, L["crotch"]), (u1 + w1, L["ankle"]), (u1 - w1, L["ankle"])], skin, LOWER)
        else:
            c.poly([(u0 - w0, L["waist"]), (u0 + w0, L["waist"]), (uh + wh, hem), (uh - wh, hem)], garment, LOWER)
            if hem < L["ankle"]:
                c.poly([(uh - wh * 0.8, hem), (uh + wh * 0.8, hem), (u1 + w1, L["ankle"]), (u1 - w1, L["ankle"])], skin, LOWER)
    if look.dress:
        flare = 1.25 if look.short_lower else 1.45
        c.poly([(-wa, L["waist"]), (wa, L["waist"]), (hip * flare, hem), (-hip * flare, hem)], garment, LOWER)
    else:
        c.poly([(-wa, L["waist"]), (wa, L["waist"]), (hip, L["crotch"]), (-hip, L["crotch"])], garment, LOWER)
    # Shoes: point forward in a side view.
    fv, fr = (L["ankle"] + 1.0) / 2, (1.0 - L["ankle"]) / 2 + 0.006
    for ank in ankles:
        c.ellipse(ank + (0.014 if side else 0.0), fv, 0.036 if side else 0.030, fr, look.shoe_color, SHOES)
    return ankles


def _torso(c: _Canvas, look: Look, L: dict[str, float], pose: Pose, side: bool) -> None:
    k = 0.62 if side else 1.0
    sh, wa, vsh, vw = L["sh"] * k, L["wa"] * k, L["vsh"], L["waist"] + 0.012
    c.poly([(-L["rx"] * 0.45, L["hh"] * 0.8), (L["rx"] * 0.45, L["hh"] * 0.8),
            (L["rx"] * 0.45, vsh + 0.01), (-L["rx"] * 0.45, vsh + 0.01)], look.skin, HEAD)  # neck
    c.poly([(-sh * 0.8, vsh - 0.012), (sh * 0.8, vsh - 0.012), (sh, vsh + 0.02), (wa * 1.02, vw),
            (-wa * 1.02, vw), (-sh, vsh + 0.02)], look.up_color, UPPER)
    if look.stripe is not None:
        pos, col = look.stripe
        v = vsh + 0.03 + pos * (vw - vsh - 0.06)
        def half(vv: float) -> float:
            t = (vv - vsh - 0.02) / (vw - vsh - 0.02)
            return sh + t * (wa * 1.02 - sh)
        v0, v1 = v - 0.012, v + 0.012
        c.poly([(-half(v0), v0), (half(v0), v0), (half(v1), v1), (-half(v1), v1)], col, STRIPE)


def _chest_details(c: _Canvas, look: Look, L: dict[str, float], pose: Pose) -> None:
    vsh, vw = L["vsh"], L["waist"]
    if look.logo is not None and pose.view == "front":
        shape, col = look.logo
        cu, cv, r = -L["sh"] * 0.38, vsh + 0.30 * (vw - vsh), 0.026
        if shape == "circle":
            c.ellipse(cu, cv, r, r, col, LOGO)
        elif shape == "square":
            c.poly([(cu - r, cv - r), (cu + r, cv - r), (cu + r, cv + r), (cu - r, cv + r)], col, LOGO)
        elif shape == "triangle":
            c.poly([(cu, cv - r * 1.2), (cu + r * 1.2, cv + r), (cu - r * 1.2, cv + r)], col, LOGO)
        else:
            c.poly([(cu, cv - r * 1.3), (cu + r * 1.1, cv), (cu, cv + r * 1.3), (cu - r * 1.1, cv)], col, LOGO)
    if look.strap is not None and pose.view in ("front", "back"):
        d, col = look.strap
        c.segment((d * L["sh"] * 0.72, vsh - 0.005), (-d * L["wa"] * 0.95, vw - 0.015), 0.011, col, STRAP)


def _bags_behind(c: _Canvas, look: Look, L: dict[str, float], pose: Pose) -> None:
    """Shapes behind the torso: the backpack's bulge in a side view."""
    if look.backpack and pose.view == "side":
        sh = L["sh"] * 0.62
        c.poly([(-sh - 0.065, L["vsh"] + 0.03), (-sh + 0.03, L["vsh"] + 0.01),
                (-sh + 0.03, L["waist"] - 0.04), (-sh - 0.07, L["waist"] - 0.05)], look.bag_color, BAG)


def _bags_front(c: _Canvas, look: Look, L: dict[str, float], pose: Pose) -> None:
    vsh, vw, sh = L["vsh"], L["waist"], L["sh"]
    if look.backpack and pose.view == "front":  # shoulder straps
        for s in (-1, 1):
            c.segment((s * sh * 0.55, vsh - 0.004), (s * sh * 0.62, vsh + 0.5 * (vw - vsh)), 0.013, look.bag_color, BAG)
    if look.backpack and pose.view == "back":
        c.poly([(-sh * 0.78, vsh + 0.02), (sh * 0.78, vsh + 0.02), (sh * 0.82, vw - 0.02),
                (-sh * 0.82, vw - 0.02)], look.bag_color, BAG)
        c.poly([(-sh * 0.6, vw - 0.10), (sh * 0.6, vw - 0.10), (sh * 0.6, vw - 0.07),
                (-sh * 0.6, vw - 0.07)], tuple(int(x * 0.7) for x in look.bag_color), BAG)  # pocket
    if look.bag:
        s = look.bag_side
        hip = L["hip"] * (0.7 if pose.view == "side" else 1.0)
        if pose.view == "side":
            c.segment((0.0, vsh), (0.0, vw - 0.02), 0.008, look.bag_color, BAG)
            bu = 0.0
        else:
            c.segment((-s * sh * 0.7, vsh), (s * hip, vw - 0.02), 0.008, look.bag_color, BAG)
            bu = s * (hip + 0.03)
        c.poly([(bu - 0.045, vw - 0.035), (bu + 0.045, vw - 0.035), (bu + 0.05, vw + 0.09),
                (bu - 0.05, vw + 0.09)], look.bag_color, BAG)


def _arm(c: _Canvas, look: Look, L: dict[str, float], s: int, swing: float, side: bool) -> tuple[float, float]:
    """One arm (sleeve, skin, hand); returns the hand centre."""
    sh = L["sh"] * (0.3 if side else 1.0)
    p0 = (s * (sh - 0.012), L["vsh"] + 0.025)
    p1 = (s * (sh + 0.010) + swing * 0.5, L["elbow"])
    p2 = (s * (sh + 0.004) + swing, L["wrist"])
    sleeve_end = (p0[0] + 0.55 * (p1[0] - p0[0]), p0[1] + 0.55 * (p1[1] - p0[1]))
    if look.short_sleeves:
        c.segment(p0, p1, 0.021, look.skin, UPPER)
        c.segment(p1, p2, 0.019, look.skin, UPPER)
        c.segment(p0, sleeve_end, 0.027, look.up_color, UPPER)
    else:
        c.segment(p0, p1, 0.025, look.up_color, UPPER)
        c.segment(p1, p2, 0.022, look.up_color, UPPER)
    hand = (p2[0] + 0.25 * (p2[0] - p1[0]), p2[1] + 0.022)
    c.ellipse(hand[0], hand[1], 0.019, 0.022, look.skin, UPPER)
    return hand


def _handbag(c: _Canvas, look: Look, hand: tuple[float, float]) -> None:
    u, v = hand
    c.segment((u - 0.02, v + 0.01), (u + 0.02, v + 0.01), 0.005, look.bag_color, BAG)
    c.poly([(u - 0.035, v + 0.025), (u + 0.035, v + 0.025), (u + 0.045, v + 0.10),
            (u - 0.045, v + 0.10)], look.bag_color, BAG)


def _head(c: _Canvas, look: Look, L: dict[str, float], pose: Pose) -> None:
    hh, rx, ry = L["hh"], L["rx"], L["ry"]
    hair = look.hair_color
    if pose.view == "back":
        c.ellipse(0.0, hh * 0.5, rx * 1.02, ry * 1.0, hair, HEAD)
        if look.long_hair:
            c.poly([(-rx * 1.05, hh * 0.5), (rx * 1.05, hh * 0.5), (rx * 1.2, L["vsh"] + 0.09),
                    (-rx * 1.2, L["vsh"] + 0.09)], hair, HEAD)
    elif pose.view == "side":
        c.ellipse(0.0, hh * 0.5, rx * 0.98, ry * 1.0, hair, HEAD)
        c.ellipse(rx * 0.22, hh * 0.58, rx * 0.78, ry * 0.8, look.skin, HEAD)
        if look.long_hair:
            c.poly([(-rx * 1.0, hh * 0.45), (-rx * 0.1, hh * 0.45), (-rx * 0.3, L["vsh"] + 0.08),
                    (-rx * 1.15, L["vsh"] + 0.08)], hair, HEAD)
    else:
        c.ellipse(0.0, hh * 0.48, rx * 1.05, ry * 1.02, hair, HEAD)
        c.ellipse(0.0, hh * 0.57, rx * 0.9, ry * 0.82, look.skin, HEAD)
        if look.long_hair:
            for s in (-1, 1):
                c.poly([(s * rx * 0.75, hh * 0.35), (s * rx * 1.1, hh * 0.35), (s * rx * 1.25, L["vsh"] + 0.05),
                        (s * rx * 0.8, L["vsh"] + 0.05)], hair, HEAD)
    if look.hat:
        c.ellipse(0.0, hh * 0.30, rx * 1.08, ry * 0.55, look.hat_color, HEAD)
        brim_u = rx * 0.9 if pose.view == "side" else 0.0
        brim_w = rx * 0.9 if pose.view == "side" else rx * 1.25
        c.ellipse(brim_u, hh * 0.42, brim_w, ry * 0.12, look.hat_color, HEAD)


def draw_person(c: _Canvas, look: Look, pose: Pose) -> None:
    """Paint one person onto the canvas, back to front, for the pose's view."""
    L = _landmarks(look)
    side = pose.view == "side"
    if look.long_hair and pose.view == "front":  # hair behind the shoulders
        c.poly([(-L["rx"] * 1.1, L["hh"] * 0.4), (L["rx"] * 1.1, L["hh"] * 0.4), (L["rx"] * 1.2, L["vsh"] + 0.07),
                (-L["rx"] * 1.2, L["vsh"] + 0.07)], look.hair_color, HEAD)
    if side:
        _arm(c, look, L, 1, -pose.swing, side=True)  # far arm, mostly hidden
        _bags_behind(c, look, L, pose)
    _legs(c, look, L, pose, side)
    _torso(c, look, L, pose, side)
    _chest_details(c, look, L, pose)
    _bags_front(c, look, L, pose)
    if side:
        hand = _arm(c, look, L, 1, pose.swing, side=True)
        hands = {look.bag_side: hand, -look.bag_side: hand}
    else:
        hands = {s: _arm(c, look, L, s, s * pose.swing * 0.3, side=False) for s in (-1, 1)}
    if look.handbag:
        _handbag(c, look, hands[-look.bag_side])
    _head(c, look, L, pose)


# ------------------------------------------------------------------------------------------
# Backgrounds and occluders


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [0, 1], shape (h, w): random values on a coarse grid, bilinear."""
    small = rng.random((max(2, h // cell + 2), max(2, w // cell + 2)))
    img = Image.fromarray(np.uint8(small * 255)).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(img, np.float32) / 255.0


def make_background(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    """A camera's background texture, float32 (2H, 2W, 3) in 0..255; images crop windows of it."""
    H, W = 2 * height, 2 * width
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = rng.uniform(70, 170, 3).astype(np.float32)
    fine = rng.normal(0.0, 1.0, (H, W)).astype(np.float32)
    low = _smooth_noise(rng, H, W, max(4, height // 8))
    s = height / 128.0
    if kind == "pavement":
        base = np.full(3, rng.uniform(95, 160), np.float32) * np.array([1.0, 0.98, 0.93], np.float32)
        tile = max(4, int(rng.integers(10, 18) * s))
        tiles = rng.uniform(0.85, 1.1, (H // tile + 1, W // tile + 1)).astype(np.float32)
        shade = tiles[(yy // tile).astype(int), (xx // tile).astype(int)]
        grout = ((yy % tile) < max(1, s)) | ((xx % tile) < max(1, s))
        g = shade * (0.9 + 0.2 * low) - 0.25 * grout + 0.04 * fine
    elif kind == "grass":
        base = np.array([rng.uniform(50, 90), rng.uniform(100, 140), rng.uniform(40, 70)], np.float32)
        g = 0.75 + 0.5 * low + 0.12 * fine
    elif kind == "wall":
        period = max(6, int(rng.integers(14, 26) * s))
        bands = 0.93 + 0.1 * ((yy // period) % 2)
        g = bands * (0.85 + 0.3 * low[:, :1]) + 0.03 * fine
    elif kind == "crosswalk":
        base = np.full(3, rng.uniform(60, 90), np.float32)
        period = max(8, int(rng.integers(20, 34) * s))
        stripes = ((yy + 0.4 * xx) % period) < period / 2
        g = 1.0 + 1.3 * stripes + 0.15 * low + 0.05 * fine
    elif kind == "shopfront":
        g = 0.85 + 0.2 * low + 0.05 * fine
        img = base[None, None, :] * g[..., None]
        x = 0
        while x < W:  # coloured panels (windows, signs) on the upper two thirds
            w = int(rng.integers(max(4, W // 8), max(5, W // 3)))
            band = slice(0, int(H * 0.66))
            img[band, x:x + w] = rng.uniform(30, 230, 3).astype(np.float32) * (0.9 + 0.2 * low[band, x:x + w, None])
            x += w + int(rng.integers(1, max(2, W // 16)))
        img[int(H * 0.66):] *= 0.8
        return np.clip(img, 0, 255).astype(np.float32)
    else:  # gravel
        speck = _smooth_noise(rng, H, W, 2)
        g = 0.8 + 0.35 * speck + 0.2 * low + 0.1 * fine
    return np.clip(base[None, None, :] * g[..., None], 0, 255).astype(np.float32)


def _blob(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float) -> list[float]:
    """An irregular (star-shaped, non-convex) polygon around (cx, cy), in pixels."""
    n = int(rng.integers(7, 13))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.55, 1.0, n)
    return np.column_stack([cx + rx * rad * np.cos(ang), cy + ry * rad * np.sin(ang)]).ravel().tolist()


def draw_occluder(c: _Canvas, rng: np.random.Generator, height: int, width: int) -> str:
    """One irregular occluder in front of the person; returns its kind."""
    kind = ("blob", "pole", "low")[int(rng.choice(3, p=[0.5, 0.2, 0.3]))]
    col = tuple(int(x) for x in rng.uniform(20, 200, 3))
    if kind == "pole":
        x = rng.uniform(0.05, 0.95) * width
        hw = rng.uniform(0.04, 0.09) * width
        tilt = rng.normal(0.0, 0.03) * width
        c.pixel_poly([x - hw, -1, x + hw, -1, x + hw + tilt, height + 1, x - hw + tilt, height + 1], col, _OCCLUDER)
    elif kind == "low":  # a car bonnet, a bench, a bush at the bottom of the frame
        top = rng.uniform(0.62, 0.85) * height
        c.pixel_poly(_blob(rng, rng.uniform(0.2, 0.8) * width, height, rng.uniform(0.5, 0.9) * width,
                           height - top), col, _OCCLUDER)
    else:  # another pedestrian's shoulder, a branch, a sign: from one side
        side = rng.choice([-0.1, 1.1])
        c.pixel_poly(_blob(rng, side * width, rng.uniform(0.25, 0.85) * height, rng.uniform(0.35, 0.6) * width,
                           rng.uniform(0.15, 0.3) * height), col, _OCCLUDER)
    return kind


# ------------------------------------------------------------------------------------------
# One image


def render(look: Look, pose: Pose, camera: Camera, background: np.ndarray, noise: np.ndarray,
           rng: np.random.Generator, *,
           height: int, width: int, supersample: int = 2, scale: float | None = None,
           dx: float | None = None, dy: float | None = None, occlude: bool | None = None,
           camera_effects: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, float | str]]:
    """Draw ``look`` in ``pose`` as seen by ``camera``.

    Args:
        background: the camera's texture, float32 (2H, 2W, 3); noise: its noise (:func:`make_noise`).
        scale, dx, dy: person height (fraction of H) and crop offsets (fractions of W, H);
            drawn from the camera's settings where ``None``.
        occlude: force an occluder on/off (default: the camera's probability).
        camera_effects: ``False`` gives the clean drawing (no light, blur, noise; used in tests).

    Returns:
        ``(rgb, parts, meta)``: uint8 (H, W, 3) before JPEG; uint8 (H, W) part bits
        (:data:`PART_BITS`); meta with the draw's random choices.
    """
    ss = supersample
    if scale is None:
        scale = float(np.clip(camera.scale * rng.normal(1.0, 0.04), 0.7, 1.1))
    if dx is None:
        dx = float(rng.normal(0.0, camera.misalign))
    if dy is None:
        dy = float(rng.normal(0.0, camera.misalign * 0.4))
    top = (1.0 - scale) / 2 + dy
    c = _Canvas(width, height, ss, 0.5 + dx, top, scale, pose.facing)
    draw_person(c, look, pose)
    if occlude is None:
        occlude = bool(rng.random() < camera.occluder_prob)
    lab = np.asarray(c.label)
    person_px = int(np.count_nonzero(lab))
    occluder = "none"
    if occlude:
        occluder = draw_occluder(c, rng, height, width)
        lab = np.asarray(c.label)
    covered = int(np.count_nonzero(lab == _OCCLUDER)) if occlude else 0
    # Box-filter down; on the black canvas the averaged colour is premultiplied by coverage.
    cover = _box_down(lab > 0, ss)[..., None]
    person = _box_down(np.asarray(c.rgb), ss)
    parts = lab[ss // 2::ss, ss // 2::ss].copy()
    parts[parts == _OCCLUDER] = 0
    oy = int(rng.integers(0, background.shape[0] - height + 1))
    ox = int(rng.integers(0, background.shape[1] - width + 1))
    bg = background[oy:oy + height, ox:ox + width]
    if rng.random() < 0.5:
        bg = bg[:, ::-1]
    img = bg * (1.0 - cover) + person
    meta: dict[str, float | str] = {
        "view": pose.view, "scale": round(scale, 4), "dx": round(dx, 4), "dy": round(dy, 4),
        "occluder": occluder, "occluded_fraction": round(covered / max(1, person_px + covered), 4),
    }
    if not camera_effects:
        return np.clip(np.rint(img), 0, 255).astype(np.uint8), parts, meta
    sigma = camera.blur * (height / 128.0) * rng.uniform(0.8, 1.2)
    img = gaussian_blur(img, sigma)
    img *= light_field(camera, height, width) * np.float32(camera.gain * rng.uniform(0.92, 1.08))
    ny = int(rng.integers(0, noise.shape[0] - height + 1))
    nx = int(rng.integers(0, noise.shape[1] - width + 1))
    img += noise[ny:ny + height, nx:nx + width]
    return np.clip(img, 0, 255).astype(np.uint8), parts, meta


def _box_down(a: np.ndarray, ss: int) -> np.ndarray:
    """Mean over ss x ss blocks, float32: (sH, sW[, C]) -> (H, W[, C])."""
    a = np.asarray(a, np.float32)
    if ss == 1:
        return a
    rows = a[0::ss]
    for i in range(1, ss):  # strided adds: much faster than a reshaped mean
        rows = rows + a[i::ss]
    out = rows[:, 0::ss]
    for j in range(1, ss):
        out = out + rows[:, j::ss]
    return out * np.float32(1.0 / (ss * ss))


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a float32 (H, W, C) image, edges replicated (radius 2 sigma)."""
    if sigma < 0.2:
        return img
    r = max(1, int(math.ceil(2.0 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    H, W = img.shape[:2]
    p = np.pad(img, ((r, r), (0, 0), (0, 0)), mode="edge")
    out = k[r] * p[r:r + H]
    for i in range(1, r + 1):
        out += k[r + i] * (p[r - i:r - i + H] + p[r + i:r + i + H])
    p = np.pad(out, ((0, 0), (r, r), (0, 0)), mode="edge")
    out = k[r] * p[:, r:r + W]
    for i in range(1, r + 1):
        out += k[r + i] * (p[:, r - i:r - i + W] + p[:, r + i:r + i + W])
    return out


@functools.lru_cache(maxsize=64)
def light_field(camera: Camera, height: int, width: int) -> np.ndarray:
    """The camera's light: gain-free colour cast times a linear fall-off, float32 (H, W, 3)."""
    gx, gy = camera.gradient
    ramp = (1.0 + gx * np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
            + gy * np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None])
    return (ramp[..., None] * np.asarray(camera.cast, np.float32)).astype(np.float32)


def make_noise(rng: np.random.Generator, camera: Camera, height: int, width: int) -> np.ndarray:
    """The camera's sensor noise, float32 (2H, 2W, 3); each image adds a random window of it."""
    return rng.standard_normal((2 * height, 2 * width, 3), dtype=np.float32) * np.float32(camera.noise)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def encode_parts(parts: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(parts, "L").save(buf, "PNG", compress_level=6)
    return buf.getvalue()
