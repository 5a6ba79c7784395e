"""The truncation trick: pull ``w`` toward the average ``w_avg`` (Karras et al. 2019, StyleGAN §B).

One implementation for the mapping network (``G(z, psi=...)``), the tools that truncate codes read
from a latent file, and the TorchScript export: ``w' = lerp(w_avg, w, psi)`` on the first ``cutoff``
codes of ``ws``, as ``MappingNetwork`` in stylegan2-ada-pytorch ``training/networks.py`` does.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["truncate"]


def truncate(ws: Tensor, w_avg: Tensor, psi: float | Tensor = 1.0, cutoff: int | None = None) -> Tensor:
    """Move codes ``0 .. cutoff - 1`` of ``ws`` ``[N, num_ws, w_dim]`` toward ``w_avg`` ``[w_dim]`` by ``1 - psi``.

    ``psi`` 1 leaves ``ws`` as it is, 0 gives ``w_avg``; ``cutoff`` None truncates every code. ``psi``
    may be a 0-d tensor (traced exports). Returns a new tensor (``ws`` itself when ``psi`` is the
    number 1); ``w_avg`` is cast to ``ws``'s dtype and device.
    """
    if not isinstance(psi, Tensor) and psi == 1:
        return ws
    w_avg = w_avg.to(ws)
    cut = ws.shape[1] if cutoff is None else int(cutoff)
    if cut >= ws.shape[1]:
        return w_avg.lerp(ws, psi)
    out = ws.clone()
    out[:, :cut] = w_avg.lerp(ws[:, :cut], psi)
    return out
