"""EigenGAN's orthogonality regulariser as plain functions (He et al. 2021; LynnHo/EigenGAN-Tensorflow)."""

from __future__ import annotations

import torch
from torch import Tensor

ORTH_FORMS = ("half_fro_sum", "mean")


def gram_deviation(u: Tensor) -> Tensor:
    """``U^T U - I_q`` for ``u`` ``[n, q]`` (needs ``n >= q``: q orthonormal columns must fit)."""
    if u.ndim != 2 or u.shape[0] < u.shape[1]:
        raise ValueError(f"orthogonality needs U [n, q] with n >= q, got {list(u.shape)}")
    q = u.shape[1]
    return u.t() @ u - torch.eye(q, device=u.device, dtype=u.dtype)


def orthogonality_penalty(bases: list[Tensor], form: str = "half_fro_sum") -> Tensor:
    """Penalty over a list of bases ``[n_l, q_l]``.

    ``half_fro_sum`` (official EigenGAN): ``sum_l 1/2 ||U_l^T U_l - I||_F^2``.
    ``mean`` (bryandlee's port): the mean over layers of ``mean((U_l^T U_l - I)^2)``.
    Zero exactly when every basis has orthonormal columns.
    """
    if form not in ORTH_FORMS:
        raise ValueError(f"model.loss.orth_reg.form={form!r}: allowed values are {', '.join(ORTH_FORMS)}")
    if not bases:
        raise ValueError("orthogonality_penalty: no basis to regularise")
    devs = [gram_deviation(u.float()) for u in bases]
    if form == "half_fro_sum":
        return torch.stack([0.5 * d.square().sum() for d in devs]).sum()
    return torch.stack([d.square().mean() for d in devs]).mean()
