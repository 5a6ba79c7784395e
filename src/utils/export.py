"""Export a generator to safetensors (weights + JSON config) and load it back without Lightning.

The file holds ``G_ema``'s state dict; its metadata entry ``gamut`` is a JSON object with the
generator class, its constructor arguments and the color space, so inference needs only
``src.modules.<family>.generator`` and torch.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from src.datamodules.colorspaces import get_colorspace
from src.utils.io import atomic_write

FORMAT = "gamut-generator/1"


def generator_config(model) -> dict:
    """Class path, constructor kwargs and color space of ``model.G_ema`` (from the module's hparams)."""
    g = model.G_ema
    names = [p for p in inspect.signature(type(g).__init__).parameters if p != "self"]
    hp = dict(model.hparams)
    kwargs = {n: hp[n] for n in names if n in hp}
    kwargs["resolution"] = list(model.resolution)
    return {"format": FORMAT, "class": f"{type(g).__module__}.{type(g).__qualname__}", "kwargs": kwargs,
            "colorspace": model.colorspace.name}


def export_generator(model, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``model.G_ema`` to ``path`` (safetensors), atomically. ``extra`` goes into the JSON."""
    config = generator_config(model) | (extra or {})
    state = {k: v.detach().cpu().contiguous() for k, v in model.G_ema.state_dict().items()}
    blob = st_save(state, metadata={"gamut": json.dumps(config)})
    return atomic_write(path, lambda f: f.write(blob))


def load_generator(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the exported generator; returns ``(generator in eval mode, colorspace, config)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such generator file")
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = (f.metadata() or {}).get("gamut")
        if meta is None:
            raise ValueError(f"{path}: not a gamut generator export (no 'gamut' metadata)")
        config = json.loads(meta)
        state = {k: f.get_tensor(k) for k in f.keys()}
    if config.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown export format {config.get('format')!r} (expected {FORMAT})")
    module_name, _, cls_name = config["class"].rpartition(".")
    if not module_name.startswith("src.modules."):
        raise ValueError(f"{path}: generator class {config['class']!r} is not a gamut network")
    cls = getattr(importlib.import_module(module_name), cls_name)
    g = cls(**config["kwargs"])
    g.load_state_dict(state)
    return g.to(device).eval().requires_grad_(False), get_colorspace(config["colorspace"]), config
