"""Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric
for Assessing Generative Models"), as NVIDIA's stylegan2-ada-pytorch ``metrics/precision_recall.py``.

Each feature set spans a manifold: the union of balls around its samples, each ball's radius the
distance to that sample's k-th nearest neighbour within the set (the sample itself excluded).

* precision = share of **generated** samples inside the **real** manifold (are the fakes realistic?)
* recall    = share of **real** samples inside the **generated** manifold (are the reals covered?)

Distances are Euclidean, computed in row blocks so memory stays ``block x n``. As NVIDIA's code,
the features are rounded to float16 first, and the distances and radii are compared in float16
(the k-th distance is picked in float32, then rounded), so samples on a ball's border fall on the
same side as in NVIDIA's numbers. The distances themselves are computed in float32 from the
rounded features (float16 ``cdist`` is a GPU kernel) and then rounded to float16.
"""

from __future__ import annotations

import torch
from torch import Tensor


def half_distances(rows: Tensor, cols: Tensor) -> Tensor:
    """Euclidean distances between float16-valued ``rows`` and ``cols``, rounded to float16 (as float32)."""
    return torch.cdist(rows.float(), cols.float()).half().float()


def kth_neighbour_radii(manifold: Tensor, k: int, block: int = 4096) -> Tensor:
    """Distance from each row of ``manifold`` to its ``k``-th nearest other row ``[N]`` (float16 values)."""
    if manifold.shape[0] <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set, got {manifold.shape[0]}")
    manifold = manifold.half()
    radii = []
    for rows in manifold.split(block):
        d = half_distances(rows, manifold)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # the (k+1)-th smallest: the row itself is at 0
    return torch.cat(radii).half().float()


def inside_share(probes: Tensor, manifold: Tensor, radii: Tensor, block: int = 4096) -> float:
    """Share of ``probes`` within ``radii[j]`` of some manifold sample ``j`` (float16 features)."""
    hits = 0
    manifold = manifold.half()
    for rows in probes.half().split(block):
        d = half_distances(rows, manifold)
        hits += int((d <= radii.unsqueeze(0)).any(dim=1).sum())
    return hits / probes.shape[0]


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, block: int = 4096) -> tuple[float, float]:
    """``(precision, recall)`` of ``fake`` against ``real`` features ``[N, D]`` with neighbourhood ``k``
    (stylegan2-ada-pytorch ``metrics/precision_recall.py``: ``compute_pr``)."""
    precision = inside_share(fake, real, kth_neighbour_radii(real, k, block), block)
    recall = inside_share(real, fake, kth_neighbour_radii(fake, k, block), block)
    return precision, recall
