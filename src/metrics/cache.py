"""On-disk cache of real-image features, one file per data set, protocol and feature network (like
NVIDIA's metric_utils).

The key is everything that changes the features: the data set class and its scalar settings, its
declared root path (absolute) and resolution (:class:`~src.datamodules.dataset.ImageDataset`),
color space, the number of images and whether x-flips are included (the protocol), a fingerprint
of the first and last images, and the feature network (its name and weights file: name, size,
mtime). Files are written atomically (:func:`src.utils.io.atomic_write`) and read with
``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from src.datamodules.dataset import ForeignDataset, MapStyleDataset, as_image_dataset
from src.metrics.generated import content_fingerprint
from src.utils.io import atomic_write

log = logging.getLogger(__name__)
FORMAT = 2  # 2: the network and mirror are part of the key; rows end with the label
_SCALARS = (int, float, str, bool, type(None))
# Counters a reader updates while it decodes images; they say nothing about the data set itself.
_VOLATILE = {"bad_files", "ignored", "strict", "num_bad"}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value.expanduser().resolve())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dataset_identity(
    dataset: MapStyleDataset,
    colorspace: str,
    num_images: int,
    weights_file: Path,
    network: str = "inception",
    mirror: bool = False,
) -> dict:
    """A JSON-able description of the real set (and feature network) whose features would be cached.

    ``dataset`` is an :class:`~src.datamodules.dataset.ImageDataset` (anything else is read with the
    protocol's defaults); a :class:`~src.datamodules.dataset.ForeignDataset` is described by the
    object it wraps (its class and settings).
    """
    dataset = as_image_dataset(dataset)
    described = dataset.wrapped if isinstance(dataset, ForeignDataset) else dataset
    settings = {}
    for k, v in sorted(vars(described).items()):
        v = _plain(v)
        if k.startswith("_") or k in _VOLATILE:
            continue
        if isinstance(v, _SCALARS) or (
            isinstance(v, list) and len(v) <= 16 and all(isinstance(e, _SCALARS) for e in v)
        ):
            settings[k] = v
    root = dataset.root
    stat = weights_file.stat()
    return {
        "format": FORMAT,
        "dataset": f"{type(described).__module__}.{type(described).__qualname__}",
        "root": None if root is None else str(Path(root).expanduser().resolve()),
        "settings": settings,
        "resolution": _plain(dataset.resolution),
        "colorspace": colorspace,
        "num_images": int(num_images),
        "mirror": bool(mirror),
        "fingerprint": content_fingerprint(dataset),
        "network": network,
        "extractor": {"file": weights_file.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
    }


def cache_file(cache_dir: str | Path, identity: dict) -> Path:
    """``<cache_dir>/<network>-<dataset>-<HxW>-<colorspace>-n<N>[-mirror]-<hash>.pt``."""
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9]+", "", identity["dataset"].rpartition(".")[2]).lower() or "data"
    res = identity["resolution"]
    res = "x".join(str(r) for r in res) if isinstance(res, list) else str(res)
    mirror = "-mirror" if identity.get("mirror") else ""
    stem = f"{identity.get('network', 'inception')}-{name}-{res}-{identity['colorspace']}-n{identity['num_images']}"
    return Path(cache_dir) / f"{stem}{mirror}-{digest}.pt"


def load_features(path: Path, identity: dict) -> Tensor | None:
    """The cached features when ``path`` exists and was made for ``identity``; else None."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged cache is recomputed, not fatal
        log.warning("ignoring unreadable feature cache %s (%s)", path, e)
        return None
    if not isinstance(data, dict) or data.get("identity") != json.dumps(identity, sort_keys=True):
        log.warning("ignoring feature cache %s: made for another data set", path)
        return None
    return data["features"]


def save_features(path: Path, identity: dict, features: Tensor) -> Path:
    data = {"identity": json.dumps(identity, sort_keys=True), "features": features.detach().float().cpu()}
    return atomic_write(path, lambda f: torch.save(data, f))
