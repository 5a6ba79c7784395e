"""Map rosinality/stylegan2-pytorch checkpoints (``g``, ``d``, ``g_ema``, ``latent_avg``) onto gamut.

The file is read with ``torch.load(weights_only=True)``; the only non-tensor type allowed in is
``argparse.Namespace`` (the training arguments rosinality stores under ``args``), a plain
attribute bag. Architecture comes from the tensor shapes: resolution from the number of
``convs``, mapping depth from the ``style.{i}`` layers, widths from the weights.

rosinality's layers compute the same functions as NVIDIA's (rosinality/stylegan2-pytorch train.py: its
``channel_multiplier`` 2 is channel_base 32768, 1 is 16384; lr_mlp 0.01 like NVIDIA's mapping):

| rosinality | gamut |
|---|---|
| ``style.{i+1}`` (EqualLinear, lr_mul 0.01) | ``mapping.layers.{i}`` |
| ``input.input`` [1, C, 4, 4] | ``synthesis.blocks.0.const`` |
| ``conv1`` / ``to_rgb1`` | ``synthesis.blocks.0.conv1`` / ``.torgb`` |
| ``convs.{2j}``, ``convs.{2j+1}``, ``to_rgbs.{j}`` | ``synthesis.blocks.{j+1}.conv0`` / ``.conv1`` / ``.torgb`` |
| ``*.conv.weight`` [1, O, I, k, k], ``*.conv.modulation`` | ``*.weight`` [O, I, k, k], ``*.affine`` |
| ``*.noise.weight`` [1], ``*.activate.bias`` | ``*.noise_strength`` [], ``*.bias`` |
| ``noises.noise_{n}`` [1, 1, H, W] | ``noise_const`` [H, W] of the n-th conv |
| D ``convs.0`` (1x1 ConvLayer) | ``blocks.0.fromrgb`` |
| D ``convs.{k}.conv1`` / ``.conv2`` / ``.skip`` | ``blocks.{k-1}.conv0`` / ``.conv1`` / ``.skip`` |
| D ``final_conv``, ``final_linear.0``, ``final_linear.1`` | ``epilogue.conv`` / ``.fc`` / ``.out`` |
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from src.pretrained.types import Imported, UnsupportedNetworkError

ROSINALITY_LR_MLP = 0.01


def load(path: str | Path) -> dict:
    """``torch.load`` with ``weights_only=True`` (plus ``argparse.Namespace`` for the stored args)."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError/RuntimeError with its own long text
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: refused or unreadable as a weights-only torch file: {first}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict with g_ema (rosinality layout), found {type(data).__name__}")
    return data


def _indexed(sd: dict, pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in sd if (m := re.match(pattern, k))})


def _mod_conv(src: dict, prefix: str, dst: dict, to: str) -> None:
    w = src[f"{prefix}.conv.weight"]
    dst[f"{to}.weight"] = w.reshape(w.shape[1:])
    dst[f"{to}.affine.weight"] = src[f"{prefix}.conv.modulation.weight"]
    dst[f"{to}.affine.bias"] = src[f"{prefix}.conv.modulation.bias"]


def generator_state(sd: dict) -> tuple[dict, dict]:
    """(gamut Generator state, architecture) from a rosinality ``Generator.state_dict()``."""
    if "input.input" not in sd or "conv1.conv.weight" not in sd:
        raise UnsupportedNetworkError("not a rosinality StyleGAN2 generator (no input.input / conv1)")
    styles = _indexed(sd, r"^style\.(\d+)\.weight$")
    if styles != list(range(1, len(styles) + 1)):
        raise UnsupportedNetworkError(f"unexpected mapping layers style.{styles}")
    convs = _indexed(sd, r"^convs\.(\d+)\.conv\.weight$")
    if len(convs) % 2:
        raise UnsupportedNetworkError(f"odd number of synthesis convs ({len(convs)})")
    n_up = len(convs) // 2
    out: dict[str, torch.Tensor] = {}
    for i, j in enumerate(styles):
        out[f"mapping.layers.{i}.weight"] = sd[f"style.{j}.weight"]
        out[f"mapping.layers.{i}.bias"] = sd[f"style.{j}.bias"]
    out["synthesis.blocks.0.const"] = sd["input.input"][0]
    layers = [("conv1", "synthesis.blocks.0.conv1")]
    for j in range(n_up):
        layers += [
            (f"convs.{2 * j}", f"synthesis.blocks.{j + 1}.conv0"),
            (f"convs.{2 * j + 1}", f"synthesis.blocks.{j + 1}.conv1"),
        ]
    for n, (src, to) in enumerate(layers):
        _mod_conv(sd, src, out, to)
        out[f"{to}.bias"] = sd[f"{src}.activate.bias"]
        if f"{src}.noise.weight" in sd:
            out[f"{to}.noise_strength"] = sd[f"{src}.noise.weight"].reshape([])
            noise = sd.get(f"noises.noise_{n}")
            if noise is None:
                raise UnsupportedNetworkError(f"noise strength for {src} but no noises.noise_{n} buffer")
            out[f"{to}.noise_const"] = noise.reshape(noise.shape[-2:])
    for j, src in enumerate(["to_rgb1"] + [f"to_rgbs.{k}" for k in range(n_up)]):
        to = f"synthesis.blocks.{j}.torgb"
        _mod_conv(sd, src, out, to)
        out[f"{to}.bias"] = sd[f"{src}.bias"].reshape(-1)
    z_dim = sd["style.1.weight"].shape[1] if styles else sd["conv1.conv.modulation.weight"].shape[1]
    res = 4 << n_up
    img_channels = sd["to_rgb1.conv.weight"].shape[1]
    channels = {4 << j: out[f"synthesis.blocks.{j}.conv1.weight"].shape[0] for j in range(n_up + 1)}
    arch = dict(
        img_channels=int(img_channels),
        resolution=res,
        num_classes=0,
        z_dim=int(z_dim),
        w_dim=int(sd["conv1.conv.modulation.weight"].shape[1]),
        map_depth=len(styles),
        map_lr_multiplier=ROSINALITY_LR_MLP,
        use_noise="conv1.noise.weight" in sd,
        conv_clamp=None,
        **_channel_plan(channels),
    )
    return out, arch


def _channel_plan(channels: dict[int, int]) -> dict:
    """channel_base/channel_max reproducing ``channels`` (res -> width) with min(base // res, max)."""
    cmax = max(channels.values())
    below = {r: c for r, c in channels.items() if c < cmax}
    base = {r * c for r, c in below.items()} or {cmax * max(channels)}
    if len(base) != 1:
        raise UnsupportedNetworkError(f"channel widths {channels} follow no min(channel_base // res, channel_max) plan")
    plan = dict(channel_base=int(base.pop()), channel_max=int(cmax))
    if any(min(plan["channel_base"] // r, cmax) != c for r, c in channels.items()):
        raise UnsupportedNetworkError(f"channel widths {channels} follow no min(channel_base // res, channel_max) plan")
    return plan


def discriminator_state(sd: dict) -> dict:
    """gamut Discriminator state from a rosinality ``Discriminator.state_dict()``."""
    if "convs.0.0.weight" not in sd or "final_linear.1.weight" not in sd:
        raise UnsupportedNetworkError("not a rosinality StyleGAN2 discriminator (no convs.0 / final_linear)")
    out = {"blocks.0.fromrgb.weight": sd["convs.0.0.weight"], "blocks.0.fromrgb.bias": sd["convs.0.1.bias"]}
    for k in _indexed(sd, r"^convs\.(\d+)\.conv1\.0\.weight$"):
        b = f"blocks.{k - 1}"
        out[f"{b}.conv0.weight"] = sd[f"convs.{k}.conv1.0.weight"]
        out[f"{b}.conv0.bias"] = sd[f"convs.{k}.conv1.1.bias"]
        out[f"{b}.conv1.weight"] = sd[f"convs.{k}.conv2.1.weight"]
        out[f"{b}.conv1.bias"] = sd[f"convs.{k}.conv2.2.bias"]
        out[f"{b}.skip.weight"] = sd[f"convs.{k}.skip.1.weight"]
    out["epilogue.conv.weight"] = sd["final_conv.0.weight"]
    out["epilogue.conv.bias"] = sd["final_conv.1.bias"]
    for i, name in enumerate(("fc", "out")):
        out[f"epilogue.{name}.weight"] = sd[f"final_linear.{i}.weight"]
        out[f"epilogue.{name}.bias"] = sd[f"final_linear.{i}.bias"]
    return out


def convert(data: dict, discriminator: str = "import") -> Imported:
    """``data``: the loaded rosinality dict. Returns gamut architecture and state dicts."""
    if "g_ema" not in data:
        raise UnsupportedNetworkError(f"no g_ema in the file (found: {', '.join(sorted(map(str, data)))})")
    g_ema, arch = generator_state(data["g_ema"])
    notes = []
    latent_avg = data.get("latent_avg")
    if latent_avg is not None:  # else build_module estimates it from random z
        g_ema["mapping.w_avg"] = latent_avg.reshape(-1)
    g = None
    if "g" in data:
        g, g_arch = generator_state(data["g"])
        if g_arch != arch:
            raise UnsupportedNetworkError("g and g_ema have different architectures")
        g["mapping.w_avg"] = g_ema.get("mapping.w_avg")
    else:
        notes.append("no g in the file: G starts as a copy of g_ema")
    d = None
    if discriminator == "import" and "d" in data:
        d = discriminator_state(data["d"])
        arch["mbstd_group"], arch["mbstd_channels"] = 4, 1  # rosinality's stddev_group / stddev_feat
    elif discriminator == "import":
        notes.append("no d in the file: D is freshly initialised (fine-tuning starts with an untrained D)")
    else:
        notes.append("discriminator=fresh: D is freshly initialised")
    if g is not None and g.get("mapping.w_avg") is None:
        g.pop("mapping.w_avg")
    return Imported(hparams=arch, G=g, D=d, G_ema=g_ema, notes=notes, format="rosinality")
