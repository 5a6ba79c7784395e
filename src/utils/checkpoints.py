"""Load a trained gamut module from a checkpoint for inference, without a Trainer or the data."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytorch_lightning as pl
import torch


def load_module(ckpt_path: str | Path, device: str | torch.device = "cpu") -> pl.LightningModule:
    """Rebuild the module class recorded in the checkpoint, load its weights, move it to ``device``.

    Loads with ``weights_only=True``. Raises ``FileNotFoundError`` / ``ValueError`` naming the file.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt={str(path)!r}: no such checkpoint file")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    target = ckpt.get("gamut", {}).get("module")
    if not target or "hyper_parameters" not in ckpt:
        raise ValueError(f"ckpt={str(path)!r} is not a gamut training checkpoint (no module record)")
    module_name, _, cls_name = target.rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name)
    model = cls(**ckpt["hyper_parameters"])
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    return model.to(device).eval()
