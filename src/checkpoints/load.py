"""Read gamut checkpoints: rebuild a module for inference, or start a new run from their weights."""

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


# ----------------------------------------------------------------------------------------------
# Starting a fresh run from existing weights (``ckpt_init``): fine-tuning an import or a past run.

# Hyperparameters that belong to the new run's config, not to the weights being loaded.
TRAINING_KEYS = frozenset({"loss", "optim", "ema", "check_finite_every", "mbstd_group", "w_avg_beta"})


def read_init_checkpoint(path: str | Path) -> dict:
    """Load a gamut checkpoint for ``ckpt_init`` (weights_only); ValueError naming the key and file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ckpt_init={str(path)!r}: no such file (a gamut .ckpt, e.g. from "
                         "scripts/import_checkpoint.py or a run's checkpoints/)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "hyper_parameters" not in ckpt or not ckpt.get("gamut", {}).get("module"):
        raise ValueError(f"ckpt_init={str(path)!r} is not a gamut checkpoint; import foreign models with "
                         "scripts/import_checkpoint.py first")
    return ckpt


def apply_init_architecture(cfg, ckpt: dict) -> list[str]:
    """Make ``cfg.model`` build the checkpoint's architecture; returns notes on what changed.

    Architecture keys (resolution, widths, mapping depth, ...) come from the checkpoint; training
    keys (:data:`TRAINING_KEYS`) and keys the checkpoint lacks (e.g. SEGAN's ``mode`` when starting
    from a StyleGAN2) stay as configured. ``data.resolution`` follows the checkpoint.
    """
    hp, state = ckpt["hyper_parameters"], ckpt["gamut"]
    module_name, _, cls_name = str(state["module"]).rpartition(".")
    src_cls = getattr(importlib.import_module(module_name), cls_name)
    target = str(cfg.model.get("_target_", ""))
    t_module, _, t_cls = target.rpartition(".")
    tgt_cls = getattr(importlib.import_module(t_module), t_cls) if t_module else None
    if tgt_cls is None or not issubclass(tgt_cls, src_cls):
        raise ValueError(f"ckpt_init holds a {cls_name}, which model={target or '?'} cannot start from; "
                         f"pick the matching model= group")
    cs = state.get("colorspace", hp.get("colorspace"))
    if cs != cfg.colorspace.name:
        raise ValueError(f"ckpt_init was trained in colorspace {cs!r}, the config uses {cfg.colorspace.name!r}; "
                         f"pass colorspace={cs}")
    notes = []
    res = hp.get("resolution")
    if res is not None and cfg.data.resolution != res:
        notes.append(f"data.resolution: {cfg.data.resolution} -> {res}")
        cfg.data.resolution = res
    for key, value in hp.items():
        if key in TRAINING_KEYS or key in ("resolution", "colorspace", "img_channels") or key not in cfg.model:
            continue
        if cfg.model[key] != value:
            notes.append(f"model.{key}: {cfg.model[key]} -> {value}")
            cfg.model[key] = value
    return notes


def load_init_weights(model: pl.LightningModule, ckpt: dict) -> list[str]:
    """Copy the checkpoint's weights into ``model``; new parameters keep their initialisation."""
    try:
        result = model.load_state_dict(ckpt["state_dict"], strict=False)
    except RuntimeError as e:  # shape mismatches
        detail = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), str(e).splitlines()[0])
        raise ValueError(f"ckpt_init does not fit the model: {detail}") from None
    if result.unexpected_keys:
        raise ValueError(f"ckpt_init has tensors the model does not: {', '.join(result.unexpected_keys[:5])}")
    notes = []
    if result.missing_keys:
        notes.append(f"{len(result.missing_keys)} tensor(s) not in ckpt_init keep their fresh initialisation: "
                     + ", ".join(result.missing_keys[:5]) + (" ..." if len(result.missing_keys) > 5 else ""))
    return notes
