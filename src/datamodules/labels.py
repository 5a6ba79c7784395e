"""Class labels of a data set: read them, count them, and draw labels the way the data has them.

Two places say which class an image is in:

* ``dataset.json`` in NVlabs' ``dataset_tool.py`` format, ``{"labels": [[file name, class], ...]}``
  (or ``"labels": null``), in a zip or at the top of a folder. :func:`parse_labels` is the one
  reader for it: the folder and zip readers (``src/datamodules/readers/``) and
  ``scripts/prepare_dataset.py`` all use it.
* a folder's top-level subfolders, one class each (:func:`subfolder_labels`): the class index is the
  subfolder's position among the sorted names of the top-level subfolders holding images.

A conditional model draws the labels of the images it generates from the data's class frequencies
(:func:`class_frequencies`, :func:`draw_labels`), as NVIDIA's stylegan2-ada-pytorch and stylegan3 do:
``training/training_loop.py`` takes ``gen_c`` from ``training_set.get_label`` of random indices and
``metrics/metric_utils.py`` does the same for the generated images of every metric.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["parse_labels", "subfolder_labels", "class_frequencies", "draw_labels"]


def _class_index(label: object) -> int | None:
    """``label`` as a class index (an int >= 0, or a one-element list of one), else None."""
    if isinstance(label, list) and len(label) == 1:
        label = label[0]
    if isinstance(label, bool) or not isinstance(label, int) or label < 0:
        return None
    return label


def _label_table(text: bytes | str, where: str) -> dict[str, object] | None:
    """The ``labels`` entry of a ``dataset.json`` as ``{file name: label}``; None for ``"labels": null``."""
    try:
        raw = json.loads(text).get("labels")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{where}: not a JSON object with a 'labels' key ({e})") from e
    if raw is None:
        return None
    try:
        return {str(name).replace("\\", "/"): label for name, label in raw}
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: 'labels' must be a list of [file name, label] pairs") from e


def parse_labels(text: bytes | str, names: Sequence[str], where: str) -> list[int] | None:
    """The class index of each of ``names`` from the text of a dataset_tool ``dataset.json``.

    ``where`` names the file in errors. Returns None for ``"labels": null``. Every name must be
    listed (file names with ``\\`` are read as ``/``); a label is a non-negative int or a
    one-element list holding one. Raises ``ValueError`` (one line naming ``where`` and the file).
    """
    table = _label_table(text, where)
    if table is None:
        return None
    labels = []
    for name in names:
        if name not in table:
            raise ValueError(f"{where}: no label for {name}")
        label = _class_index(table[name])
        if label is None:
            raise ValueError(
                f"{where}: label of {name} is {table[name]!r}; only non-negative integer class labels are supported"
            )
        labels.append(label)
    return labels


def subfolder_labels(names: Sequence[str], root: str) -> tuple[list[int], list[str]]:
    """``(labels, class_names)`` of images named by relative POSIX paths under ``root``.

    Each top-level subfolder is one class; ``class_names`` are those subfolders in sorted order and
    an image's label is its subfolder's position there. An image directly in ``root`` raises a
    ``ValueError`` naming it.
    """
    loose = next((n for n in names if "/" not in n), None)
    if loose is not None:
        raise ValueError(
            f"{root}/{loose} is not in a class subfolder: with labels, put each class's images "
            f"in its own subfolder of {root} or list every image in {root}/dataset.json"
        )
    class_names = sorted({n.split("/", 1)[0] for n in names})
    index = {c: i for i, c in enumerate(class_names)}
    return [index[n.split("/", 1)[0]] for n in names], class_names


def class_frequencies(counts: Tensor | Sequence[int] | None) -> Tensor | None:
    """Images per class ``[num_classes]`` -> float32 frequencies summing to 1; None when unknown or empty."""
    if counts is None:
        return None
    counts = torch.as_tensor(counts, dtype=torch.float64).flatten()
    if counts.numel() == 0 or not bool((counts >= 0).all()) or float(counts.sum()) <= 0:
        return None
    return (counts / counts.sum()).to(torch.float32)


def known_frequencies(distribution: Tensor | None) -> Tensor | None:
    """``distribution`` as float32 on the CPU when it is known, else None (None or all zeros: a checkpoint
    from before labels were counted, a data set that does not count its labels)."""
    if distribution is None or float(distribution.sum()) <= 0:
        return None
    return distribution.detach().float().cpu()


def draw_labels(
    distribution: Tensor | None,
    num_classes: int,
    n: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``n`` class indices (int64) drawn i.i.d. from ``distribution`` (the data's class frequencies).

    Without a known distribution (None or all zeros: a checkpoint from before labels were counted, a
    data set that does not count its labels) the labels are uniform over ``num_classes``; that is
    the only fallback.
    """
    if distribution is None:
        return torch.randint(0, num_classes, (n,), generator=generator, device=device)
    weights = distribution.to(device=device, dtype=torch.float32)
    # all zeros = not known; decided on the device, so drawing never waits for the host
    weights = torch.where(weights.sum() > 0, weights, torch.ones_like(weights))
    return torch.multinomial(weights, n, replacement=True, generator=generator)


def seed_labels(distribution: Tensor | None, num_classes: int, seeds: Sequence[int]) -> Tensor:
    """One class index per seed (int64 ``[len(seeds)]``), each drawn by :func:`draw_labels` with a
    generator seeded by that seed, so a seed gets the same class in every tool and grid."""
    return torch.cat(
        [draw_labels(distribution, num_classes, 1, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    )
