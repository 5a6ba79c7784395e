"""``model.augment``: the one switch for discriminator augmentation, in any colour space.

Modes: ``none``; ``ada`` (the pipeline with ``p`` adjusted by :class:`~src.augment.adaptive.AdaptiveP`);
``fixed`` (the pipeline at the given ``p``); ``diffaugment`` (:mod:`src.augment.diffaugment`, always
on). The family applies :class:`Augmentation` to every image its discriminator sees: the reals,
the fakes (G trains through it) and the reals of R1.

Colour spaces. ADA and DiffAugment define their colour transforms on centred RGB. In ``rgb``,
``rgba`` and ``gray`` the model space *is* centred RGB (alpha passes through the colour
transforms; gray takes the luma part). In the other spaces the colour change is computed on the
decoded image and added to the model-space input:
``x + encode(T(decode(x))) - encode(decode(x))``, which equals ``encode(T(decode(x)))`` for images
inside the RGB gamut, leaves ``x`` exactly unchanged where ``T`` is the identity, and keeps the
part of a fake that lies outside the gamut visible to D (decoding clamps it). HSV's hue difference
is taken modulo one turn. Geometric transforms, filtering, noise and cutout act on the model-space
channels directly (every channel, alpha included), with two exceptions where a space has a hue
channel (``ColorSpace.hue_channel``: ``hsv``): the warp and the filter mix hue as an angle
(:mod:`src.augment.hue`), and cutout paints the space's encoding of RGB cutout's colour, mid-gray
(in ``hsv`` ``(-1, -1, 0)``: saturation 0, value 1/2 and the hue the encoding gives a gray pixel),
where zeros would mean a half-saturated cyan. In every other space zero already is a neutral gray.
Additive noise on hue is a small rotation of the angle; it needs no change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from src.augment.ada import PIPELINES, TRANSFORMS, AugmentPipe, plain_draw
from src.augment.adaptive import AdaptiveP
from src.augment.diffaugment import POLICIES, diff_augment
from src.augment.hue import wrap
from src.colorspaces import ColorSpace, get_colorspace

MODES = ("none", "ada", "fixed", "diffaugment")
DEFAULTS: dict[str, Any] = dict(
    mode="none", pipeline="bgc", p=0.0, target=0.6, interval=4, kimg=500.0, policy=list(POLICIES)
)
CENTRED_RGB = frozenset({"rgb", "rgba", "gray"})  # model space = RGB (or luma) scaled to [-1, 1]
# the spaces with a channel holding hue as an angle, one turn over [-1, 1) (src/colorspaces/conversions.py)
MID_GRAY = 0.5  # what RGB cutout's zero is in [0, 1]


def check_augment(cfg: Mapping[str, Any]) -> None:
    """One error naming ``model.augment.<key>``, the value and what is allowed."""
    key = "model.augment"
    if cfg["mode"] not in MODES:
        raise ValueError(f"{key}.mode={cfg['mode']!r}: allowed values are {', '.join(MODES)}")
    pipeline = cfg["pipeline"]
    if isinstance(pipeline, str):
        if pipeline not in PIPELINES:
            raise ValueError(
                f"{key}.pipeline={pipeline!r}: allowed values are {', '.join(PIPELINES)} "
                f"or a list of transforms from {', '.join(TRANSFORMS)}"
            )
    else:
        unknown = [t for t in pipeline if t not in TRANSFORMS]
        if unknown or not pipeline:
            raise ValueError(
                f"{key}.pipeline={list(pipeline)!r}: unknown transform(s) {unknown}; "
                f"allowed: {', '.join(TRANSFORMS)} (or a name: {', '.join(PIPELINES)})"
            )
    if not isinstance(cfg["p"], (int, float)) or cfg["p"] < 0:
        raise ValueError(f"{key}.p={cfg['p']!r}: expected a number >= 0 (the augmentation probability)")
    if not 0 < cfg["target"] < 1:
        raise ValueError(f"{key}.target={cfg['target']!r}: expected a value in (0, 1) (the paper uses 0.6)")
    if not isinstance(cfg["interval"], int) or cfg["interval"] < 1:
        raise ValueError(f"{key}.interval={cfg['interval']!r}: expected an integer >= 1 (iterations between updates)")
    if not cfg["kimg"] > 0:
        raise ValueError(f"{key}.kimg={cfg['kimg']!r}: expected > 0 (kimg for p to go from 0 to 1)")
    unknown = [t for t in cfg["policy"] if t not in POLICIES]
    if unknown:
        raise ValueError(f"{key}.policy={list(cfg['policy'])!r}: unknown {unknown}; allowed: {', '.join(POLICIES)}")


def in_centred_rgb(x: Tensor, colorspace: ColorSpace, transform: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply the centred-RGB colour ``transform`` to model-space ``x`` (see the module docstring)."""
    if colorspace.name == "rgba":  # alpha is not a colour: it passes through
        return torch.cat([transform(x[:, :3]), x[:, 3:]], dim=1)
    if colorspace.name in CENTRED_RGB:
        return transform(x)
    rgb = colorspace.decode(x)
    before = colorspace.encode(rgb)
    after = colorspace.encode((transform(rgb * 2 - 1) + 1) / 2)
    delta = after - before
    hue = colorspace.hue_channel
    if hue is not None:  # hue in [-1, 1) is one turn: take the short way round
        delta = torch.cat([delta[:, :hue], wrap(delta[:, hue : hue + 1]), delta[:, hue + 1 :]], dim=1)
    return x + delta.to(x.dtype)


def cutout_fill(colorspace: ColorSpace) -> tuple[float, ...] | None:
    """What ADA's cutout paints in ``colorspace``: None (zeros, as in RGB) unless the space has a hue
    channel, where zero is no gray; then the space's encoding of mid-gray."""
    if colorspace.hue_channel is None:
        return None
    gray = torch.full((1, colorspace.input_channels, 1, 1), MID_GRAY)
    return tuple(float(v) for v in colorspace.encode(gray).flatten())


class Augmentation(nn.Module):
    """What D sees: ``augmentation(images)`` for model-space images; identity for mode ``none``.

    ``pipe.p`` is the current probability; ``adaptive`` (mode ``ada``) holds the r_t accumulator.
    """

    def __init__(self, colorspace: str | ColorSpace = "rgb", **options: Any) -> None:
        super().__init__()
        cfg = {**DEFAULTS, **options}
        check_augment(cfg)
        self.mode, self.colorspace = cfg["mode"], get_colorspace(colorspace)
        self.policy = tuple(cfg["policy"])
        pipeline = cfg["pipeline"]
        transforms = PIPELINES[pipeline] if isinstance(pipeline, str) else tuple(pipeline)
        self.pipe = (
            AugmentPipe(
                transforms,
                p=cfg["p"],
                hue_channel=self.colorspace.hue_channel,
                cutout_fill=cutout_fill(self.colorspace),
            )
            if self.mode in ("ada", "fixed")
            else None
        )
        self.adaptive = AdaptiveP(cfg["target"], cfg["interval"], cfg["kimg"]) if self.mode == "ada" else None

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @property
    def p(self) -> Tensor | None:
        return None if self.pipe is None else self.pipe.p

    def forward(self, images: Tensor, draw: Callable | None = None) -> Tensor:
        """Augment model-space ``images``. ``draw(fn, n, *shape, device)`` makes every random
        number (a family passes its rank-consistent draw); default: ``fn(n, *shape)``."""
        if self.mode == "none":
            return images
        draw = draw or plain_draw
        dtype = images.dtype
        x = images.float()  # the transforms run in fp32, whatever the autocast dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            if self.mode == "diffaugment":
                x = self._diffaugment(x, draw)
            else:
                x = self._ada(x, draw)
        return x.to(dtype)

    def _ada(self, x: Tensor, draw: Callable) -> Tensor:
        assert self.pipe is not None  # built for modes ada and fixed, the only ones that come here
        return self.pipe(x, draw, in_rgb=lambda images, color: in_centred_rgb(images, self.colorspace, color))

    def _diffaugment(self, x: Tensor, draw: Callable) -> Tensor:
        if "color" in self.policy:
            x = in_centred_rgb(x, self.colorspace, lambda rgb: diff_augment(rgb, ("color",), draw))
        return diff_augment(x, [name for name in self.policy if name != "color"], draw)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, colorspace={self.colorspace.name}"
