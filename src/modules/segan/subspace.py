"""SEGAN's per-layer linear subspaces (SEGan_Pytorch subspace.py), one small class per mode.

Every subspace sees its layer's *coordinates* ``c`` ``[B, q]`` (the w slot that feeds the layer,
or EigenGAN-style sampled coordinates) and returns either a feature-map offset (mode 1) or the
layer's new style vector ``w'`` (modes 2 and 3). Edits and SEGAN's ``factor`` α are applied to
``c`` by the caller (:mod:`src.modules.segan.editing`), so these modules hold no run-time state.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

U_INITS = ("segan", "orthonormal")
L_INITS = ("ones", "eigengan")
HARD_ORTH = ("none", "qr")


def init_importance(q: int, how: str = "ones") -> Tensor:
    """L at init: ``ones`` (SEGAN) or EigenGAN's descending ``3q, 3(q-1), ..., 3`` (EigenGAN)."""
    if how == "ones":
        return torch.ones(q)
    if how == "eigengan":
        return 3.0 * torch.arange(q, 0, -1, dtype=torch.float32)
    raise ValueError(f"model.subspace.L_init={how!r}: allowed values are {', '.join(L_INITS)}")


def orthonormalize(u: Tensor) -> Tensor:
    """Reduced QR with the sign fixed (``diag(R) >= 0``): the nearest-style orthonormal frame.

    ``u`` ``[n, q]``; columns come out orthonormal when ``n >= q``, rows when ``n < q``.
    """
    if u.shape[0] < u.shape[1]:
        return orthonormalize(u.t()).t()
    q, r = torch.linalg.qr(u)
    sign = torch.sign(torch.diagonal(r))
    return q * torch.where(sign == 0, torch.ones_like(sign), sign)


class FeatureSubspace(nn.Module):
    """Mode 1: ``phi = reshape(U (L * c)) + mu``, added to a layer's output map ``[C, h, w]``.

    ``U`` is stored as the matrix ``[C*h*w, q]`` (the memory layout of their ``[C, h, w, q]``) and
    applied with one matmul, never the 5-D broadcast of their model_SEG.py.
    ``U_init='segan'`` reproduces their orthogonal init over the ``C x (h*w*q)`` view (rows
    orthonormal); ``'orthonormal'`` makes the q basis columns orthonormal (EigenGAN).
    """

    def __init__(
        self,
        channels: int,
        size: tuple[int, int],
        q: int = 64,
        U_init: str = "segan",
        L_init: str = "ones",
        hard: str = "none",
    ) -> None:
        super().__init__()
        if U_init not in U_INITS:
            raise ValueError(f"model.subspace.U_init={U_init!r}: allowed values are {', '.join(U_INITS)}")
        if hard not in HARD_ORTH:
            raise ValueError(f"model.loss.orth_reg.hard={hard!r}: allowed values are {', '.join(HARD_ORTH)}")
        self.channels, self.size, self.q, self.U_init, self.hard = channels, tuple(size), q, U_init, hard
        h, w = self.size
        n = channels * h * w
        u = torch.empty(channels, h * w * q) if U_init == "segan" else torch.empty(n, q)
        nn.init.orthogonal_(u)
        self.U = nn.Parameter(u.reshape(n, q))
        self.L = nn.Parameter(init_importance(q, L_init))
        self.mu = nn.Parameter(torch.zeros(channels, h, w))

    def basis(self) -> Tensor:
        """``U`` ``[C*h*w, q]`` as used in the forward pass (orthonormalised when ``hard='qr'``)."""
        return orthonormalize(self.U) if self.hard == "qr" else self.U

    def forward(self, c: Tensor) -> Tensor:
        if c.ndim != 2 or c.shape[1] != self.q:
            raise ValueError(f"coordinates must be [B, {self.q}], got {list(c.shape)}")
        phi = (c * self.L.to(c.dtype)) @ self.basis().to(c.dtype).t()  # [B, C*h*w]
        return phi.reshape(-1, self.channels, *self.size) + self.mu.to(c.dtype)

    def extra_repr(self) -> str:
        return (
            f"map=[{self.channels}, {self.size[0]}, {self.size[1]}], q={self.q}, U_init={self.U_init}, hard={self.hard}"
        )


class ColumnSumSubspace(nn.Module):
    """Mode 2 ``faithful``: what their w->w subspace really computes (``EigenSpace_2style`` in subspace.py).

    Their ``sum_{c,y,x} U[c,y,x,:] * (L * w)`` collapses to ``w' = (L * s * c) + mu`` with
    ``s = colsum(U)``. The ``C*h*w*q`` tensor is replaced by ``p`` ``[q]`` with
    ``s = n * p`` (``n = C*h*w``), which keeps their ×n effective learning rate on ``s`` under
    Adam; ``p`` starts at ``s0 / n`` with ``s0 ~ N(0, C/q)``, the distribution of their column sums.
    """

    def __init__(self, channels: int, size: tuple[int, int], q: int = 64, L_init: str = "ones") -> None:
        super().__init__()
        self.channels, self.size, self.q = channels, tuple(size), q
        self.n = channels * self.size[0] * self.size[1]
        s0 = torch.randn(q) * math.sqrt(channels / q)
        self.p = nn.Parameter(s0 / self.n)
        self.L = nn.Parameter(init_importance(q, L_init))
        self.mu = nn.Parameter(torch.zeros(q))

    def column_sums(self) -> Tensor:
        """``s`` ``[q]``: the column sums of their (never stored) ``U``."""
        return self.p * self.n

    def forward(self, c: Tensor) -> Tensor:
        if c.ndim != 2 or c.shape[1] != self.q:
            raise ValueError(f"coordinates must be [B, {self.q}], got {list(c.shape)}")
        return c * (self.L * self.column_sums()).to(c.dtype) + self.mu.to(c.dtype)

    def extra_repr(self) -> str:
        return f"q={self.q}, n={self.n} (C={self.channels}, size={list(self.size)})"


class EigenSubspace(nn.Module):
    """Mode 2 ``eigen``: ``w' = U (L * c) + mu`` (+ w for sampled coordinates), their README's w->w map.

    ``U`` ``[w_dim, q]`` with orthonormal columns at init, ``L`` ``[q]``, ``mu`` ``[w_dim]``.
    ``residual=True`` (``coords: sampled``) adds the layer's w: ``w' = w + U (L * z) + mu``.
    """

    def __init__(
        self, w_dim: int, q: int = 64, L_init: str = "ones", residual: bool = False, hard: str = "none"
    ) -> None:
        super().__init__()
        if hard not in HARD_ORTH:
            raise ValueError(f"model.loss.orth_reg.hard={hard!r}: allowed values are {', '.join(HARD_ORTH)}")
        self.w_dim, self.q, self.residual, self.hard = w_dim, q, residual, hard
        u = torch.empty(w_dim, q)
        nn.init.orthogonal_(u)
        self.U = nn.Parameter(u)
        self.L = nn.Parameter(init_importance(q, L_init))
        self.mu = nn.Parameter(torch.zeros(w_dim))

    def basis(self) -> Tensor:
        return orthonormalize(self.U) if self.hard == "qr" else self.U

    def forward(self, c: Tensor, w: Tensor | None = None) -> Tensor:
        if c.ndim != 2 or c.shape[1] != self.q:
            raise ValueError(f"coordinates must be [B, {self.q}], got {list(c.shape)}")
        out = (c * self.L.to(c.dtype)) @ self.basis().to(c.dtype).t() + self.mu.to(c.dtype)
        if self.residual:
            if w is None:
                raise ValueError("EigenSubspace(residual=True) needs the layer's w")
            out = out + w
        return out

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, q={self.q}, residual={self.residual}, hard={self.hard}"


class ScaleSubspace(nn.Module):
    """Mode 3 ("only L"): ``w' = L * c`` with ``L`` ``[q]``, no bias (their ``EigenSpace_onlyL``)."""

    def __init__(self, q: int = 64, L_init: str = "ones") -> None:
        super().__init__()
        self.q = q
        self.L = nn.Parameter(init_importance(q, L_init))

    def forward(self, c: Tensor) -> Tensor:
        if c.ndim != 2 or c.shape[1] != self.q:
            raise ValueError(f"coordinates must be [B, {self.q}], got {list(c.shape)}")
        return c * self.L.to(c.dtype)

    def extra_repr(self) -> str:
        return f"q={self.q}"


Subspace = FeatureSubspace | ColumnSumSubspace | EigenSubspace | ScaleSubspace  # what SEGANSynthesis.spaces holds
