"""The latent file: projected ``ws`` plus noise maps, tied to the generator they were made for.

A safetensors file (``*.safetensors``, format ``gamut-latents/1``) with the tensors ``ws``
``[N, num_ws, w_dim]`` and ``noise.<layer>`` ``[N, H, W]`` (one map per image and noise layer), and a
JSON metadata entry ``gamut`` holding the generator fingerprint (class, ``num_ws``, ``w_dim``,
resolution, channels, noise shapes) and free-form info (target names, mode). Loading it for a
generator of another shape raises a ``ValueError`` naming the mismatch. NVIDIA's
``projected_w.npz`` (stylegan2-ada-pytorch projector.py) is read too (ws only).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as st_save
from torch import Tensor

from src.nn.style_generator import NoiseLayer, StyleGenerator
from src.utils.io import atomic_write

FORMAT = "gamut-latents/1"


def noise_layers(generator: StyleGenerator) -> dict[str, NoiseLayer]:
    """Synthesis layers that take noise, by their name inside ``generator.synthesis`` (in order)."""
    return {name: m for name, m in generator.synthesis.named_modules() if isinstance(m, NoiseLayer) and m.use_noise}


def fingerprint(generator: StyleGenerator) -> dict:
    """The shape facts a latent file must agree with to render on ``generator``."""
    return {
        "class": f"{type(generator).__module__}.{type(generator).__qualname__}",
        "num_ws": int(generator.num_ws),
        "w_dim": int(generator.w_dim),
        "resolution": [int(s) for s in generator.resolution],
        "img_channels": int(generator.img_channels),
        "noise": {name: [int(s) for s in m.noise_const.shape[-2:]] for name, m in noise_layers(generator).items()},
    }


def fingerprint_mismatch(saved: dict, current: dict) -> str | None:
    """First difference between two fingerprints as ``'key: file has A, generator has B'`` (None if equal)."""
    for key in ("num_ws", "w_dim", "resolution", "img_channels"):
        if key in saved and saved[key] != current[key]:
            return f"{key}: the latent file has {saved[key]}, the generator has {current[key]}"
    if "noise" in saved and saved["noise"] != current["noise"]:
        a, b = saved["noise"], current["noise"]
        diff = sorted(set(a) ^ set(b)) or [k for k in a if a[k] != b.get(k)]
        return (
            f"noise maps: the latent file has {len(a)} ({', '.join(diff[:3])} ...), "
            f"the generator has {len(b)} of other shapes"
        )
    return None


@dataclass
class Latents:
    """``ws`` ``[N, num_ws, w_dim]``, ``noise`` name -> ``[N, H, W]`` (may be empty), and ``info``."""

    ws: Tensor
    noise: dict[str, Tensor] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.ws.shape[0]

    def select(self, index: list[int] | slice) -> Latents:
        return Latents(self.ws[index], {k: v[index] for k, v in self.noise.items()}, dict(self.info))


def save_latents(path: str | Path, latents: Latents, generator: StyleGenerator) -> Path:
    """Write ``latents`` for ``generator`` atomically (checks the shapes against the generator first)."""
    fp = fingerprint(generator)
    check_shapes(latents, fp, str(path))
    tensors = {"ws": latents.ws.detach().float().cpu().contiguous()}
    tensors |= {f"noise.{k}": v.detach().float().cpu().contiguous() for k, v in latents.noise.items()}
    meta = {"format": FORMAT, "generator": fp, "info": latents.info}
    blob = st_save(tensors, metadata={"gamut": json.dumps(meta)})
    return atomic_write(path, lambda f: f.write(blob))


def check_shapes(latents: Latents, fp: dict, where: str) -> None:
    ws = latents.ws
    if ws.ndim != 3 or ws.shape[1] != fp["num_ws"] or ws.shape[2] != fp["w_dim"]:
        raise ValueError(
            f"{where}: ws has shape {list(ws.shape)}, the generator needs "
            f"[N, num_ws={fp['num_ws']}, w_dim={fp['w_dim']}]"
        )
    for name, t in latents.noise.items():
        want = fp["noise"].get(name)
        if want is None or list(t.shape[1:]) != want or t.shape[0] != ws.shape[0]:
            raise ValueError(
                f"{where}: noise map {name} has shape {list(t.shape)}, the generator needs [N={ws.shape[0]}, {want}]"
            )


def load_latents(path: str | Path, generator: StyleGenerator | None = None, key: str = "latents") -> Latents:
    """Read a latent file; with ``generator``, check that it fits (ValueError naming the mismatch)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{key}={str(path)!r}: no such latent file")
    if path.suffix == ".npz":
        latents = _load_npz(path, key)
        saved = None
    else:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = json.loads((f.metadata() or {}).get("gamut", "{}"))
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # not a safetensors file
            raise ValueError(f"{key}={str(path)!r} is not a latent file ({type(e).__name__})") from None
        if meta.get("format") != FORMAT or "ws" not in tensors:
            raise ValueError(
                f"{key}={str(path)!r} is not a gamut latent file (format {meta.get('format')!r}, "
                f"expected {FORMAT}; write one with scripts/project.py)"
            )
        noise = {k.removeprefix("noise."): v for k, v in tensors.items() if k.startswith("noise.")}
        latents = Latents(tensors["ws"], noise, meta.get("info", {}))
        saved = meta.get("generator")
    if generator is not None:
        current = fingerprint(generator)
        problem = fingerprint_mismatch(saved, current) if saved else None
        if problem:
            raise ValueError(f"{key}={str(path)!r} was made for another generator: {problem}")
        check_shapes(latents, current, f"{key}={str(path)!r}")
    return latents


def _load_npz(path: Path, key: str) -> Latents:
    with np.load(path) as data:
        if "w" not in data:
            raise ValueError(f"{key}={str(path)!r}: an .npz latent file needs an array 'w' (NVIDIA's projected_w.npz)")
        ws = torch.from_numpy(np.asarray(data["w"], dtype=np.float32))
    return Latents(ws, {}, {"source": "npz"})


@contextlib.contextmanager
def noise_override(generator: StyleGenerator, noise: dict[str, Tensor]) -> Iterator[None]:
    """Within the block, layer ``name`` uses ``noise[name]`` (``[N, H, W]``, one map per image) as its
    'const' noise; the stored buffers come back afterwards. Gradients flow into the given maps."""
    layers = noise_layers(generator)
    unknown = sorted(set(noise) - set(layers))
    if unknown:
        raise ValueError(f"noise for unknown layer(s) {', '.join(unknown)}")
    saved = {name: layers[name].noise_const for name in noise}
    try:
        for name, t in noise.items():
            layers[name].noise_const = t.unsqueeze(1) if t.ndim == 3 else t  # [N, 1, H, W] broadcasts over C
        yield
    finally:
        for name, t in saved.items():
            layers[name].noise_const = t


def render(generator: StyleGenerator, latents: Latents, noise_mode: str = "const", batch: int = 16) -> Tensor:
    """Images of ``latents`` in the model's color space; 'const' uses the file's noise maps if it has them."""
    device = next(generator.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(latents), batch):
            part = latents.select(slice(i, i + batch))
            noise = {k: v.to(device) for k, v in part.noise.items()} if noise_mode == "const" else {}
            with noise_override(generator, noise):
                out.append(generator.synthesis(part.ws.to(device), noise_mode=noise_mode).float())
    return torch.cat(out)
