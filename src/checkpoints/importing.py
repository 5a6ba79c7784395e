"""Import a foreign StyleGAN2 or StyleGAN3 checkpoint into a gamut checkpoint: read, fill a module, verify, write.

``import_checkpoint(src, out)`` is the library form of ``scripts/import_checkpoint.py``
(:mod:`src.tools.import_checkpoint`). Reading and translating the foreign file is
:func:`src.pretrained.reader.read`'s (NVIDIA pickles through a reader that runs no code, rosinality
``.pt`` files with ``weights_only``); here the translated tensors fill the module of the family the
reader found (:data:`FAMILIES`: ``StyleGAN2``, or ``StyleGAN3`` for NVIDIA's configs T and R, whose
stored schedule and filters are first compared with gamut's by
:func:`src.checkpoints.importing_stylegan3.check_stylegan3`), every tensor checked for name and shape. The result is
a Lightning-format checkpoint (loads with ``torch.load(weights_only=True)``;
``scripts/generate.py``, ``experiment=finetune ckpt_init=...`` and the other tools take it) plus a
safetensors export of G_ema next to it.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from src.checkpoints.export import export_generator
from src.checkpoints.importing_stylegan3 import check_stylegan3
from src.modules.stylegan2.module import StyleGAN2
from src.modules.stylegan3.module import StyleGAN3
from src.pretrained.reader import read
from src.pretrained.types import Imported, UnsupportedNetworkError
from src.utils.io import atomic_write

COLORSPACE_BY_CHANNELS = {1: "gray", 3: "rgb", 4: "rgba"}
# Imported.family -> the module built from it (StyleGAN3 subclasses StyleGAN2)
FAMILIES: dict[str, type[StyleGAN2]] = {"stylegan2": StyleGAN2, "stylegan3": StyleGAN3}


def _named(key: str, imported: Imported) -> str:
    """``key`` (``G_ema.…``) with the source's own name for it, where that differs."""
    source = imported.source_names.get(key)
    return f"{key} ({source} in the source)" if source else key


def _fill(model: StyleGAN2, imported: Imported) -> list[str]:
    """Copy the imported tensors into ``model``; every gamut tensor must be covered and fit."""
    sd = model.state_dict()
    notes = []
    parts = {"G_ema.": imported.G_ema, "G.": imported.G if imported.G is not None else imported.G_ema}
    if imported.D is not None:
        parts["D."] = imported.D
    for prefix, part in parts.items():
        for name, t in part.items():
            key = prefix + name
            if key not in sd:
                source = imported.source_names.get(key, f"{prefix}{name}")
                raise UnsupportedNetworkError(
                    f"the source has {source!r} ({name!r}), which gamut's {prefix[:-1]} does not have"
                )
            if tuple(sd[key].shape) != tuple(t.shape):
                raise UnsupportedNetworkError(
                    f"{_named(key, imported)}: the source holds shape {list(t.shape)}, gamut's "
                    f"{prefix[:-1]} expects {list(sd[key].shape)}"
                )
            sd[key] = t.to(sd[key].dtype)
        ours = [k[len(prefix) :] for k in sd if k.startswith(prefix)]
        # w_avg: D's is unused; G's is estimated below when the source has none.
        uncovered = [k for k in ours if k not in part and k != "mapping.w_avg"]
        if uncovered:
            raise UnsupportedNetworkError(
                f"the source has no tensor for {prefix}{uncovered[0]}"
                + (f" (and {len(uncovered) - 1} more)" if len(uncovered) > 1 else "")
            )
    model.load_state_dict(sd)
    if "mapping.w_avg" not in imported.G_ema:
        g, g_ema = model.G, model.G_ema
        with torch.no_grad():
            gen = torch.Generator().manual_seed(0)
            z = torch.randn(10000, g_ema.z_dim, generator=gen)
            c = model.random_labels(10000) if model.num_classes else None
            w_avg = g_ema.mapping(z, c)[:, 0].mean(dim=0)
        g_ema.mapping.w_avg.copy_(w_avg)
        g.mapping.w_avg.copy_(w_avg)
        notes.append("w_avg estimated as the mean w of 10000 random z (seed 0)")
    return notes


def build_module(imported: Imported) -> StyleGAN2:
    """The family's module (:data:`FAMILIES`) with the imported architecture and weights (verified tensor
    by tensor; StyleGAN3's schedule and filters first, by :func:`check_stylegan3`)."""
    hp = dict(imported.hparams)
    channels = hp.pop("img_channels")  # the module takes its channels from the colour space
    cs = COLORSPACE_BY_CHANNELS.get(channels)
    if cs is None:
        raise UnsupportedNetworkError(
            f"{channels}-channel images: gamut imports 1 (gray), 3 (rgb) or 4 (rgba) channels"
        )
    family = FAMILIES.get(imported.family)
    if family is None:
        raise UnsupportedNetworkError(f"no gamut family for {imported.family!r} networks")
    model = family(colorspace=cs, **hp)
    if isinstance(model, StyleGAN3):
        check_stylegan3(model, imported)
    imported.notes += _fill(model, imported)
    return model.eval()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(model: StyleGAN2, out: str | Path, source: dict) -> Path:
    """Write a Lightning-format checkpoint of ``model`` atomically (a fresh run: step 0, no optimizer)."""
    ckpt: dict[str, Any] = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "hyper_parameters": dict(model.hparams),
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
    }
    model.on_save_checkpoint(ckpt)
    ckpt["gamut"].pop("rng", None)  # an import has no training RNG stream to continue
    ckpt["gamut"]["source"] = source
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return atomic_write(out, lambda f: f.write(buf.getvalue()))


def import_checkpoint(
    src: str | Path, out: str | Path, discriminator: str = "import", export: bool = True
) -> tuple[Path, Imported]:
    """Import ``src`` (NVIDIA pickle or rosinality .pt) to the gamut checkpoint ``out``.

    Returns ``(out, imported)``; ``imported.notes`` lists what was filled in. With ``export``, the
    G_ema safetensors export is written next to ``out`` (same stem, ``.safetensors``).
    """
    src, out = Path(src), Path(out)
    if out.suffix != ".ckpt":
        raise ValueError(f"out={str(out)!r}: the gamut checkpoint must end in .ckpt")
    if out.resolve() == src.resolve():
        raise ValueError(f"out={str(out)!r} would overwrite the source file")
    imported = read(src, discriminator)
    model = build_module(imported)
    source = {"file": src.name, "sha256": _sha256(src), "format": imported.format, "notes": imported.notes}
    save_checkpoint(model, out, source)
    if export:
        export_generator(model, out.with_suffix(".safetensors"), extra={"source": source})
    return out, imported
