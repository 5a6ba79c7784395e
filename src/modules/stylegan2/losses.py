"""StyleGAN2 losses and regularizers as plain functions of tensors.

As in stylegan2-ada-pytorch training/loss.py: R1 from Mescheder et al. 2018 (Eq. 9), path length
from Karras et al. 2020 (§3.2, Eq. 4), lazy regularization from ibid. §3.1.
Each returns per-sample values; the LightningModule takes the mean and applies the lazy gain.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def g_nonsaturating(fake_logits: Tensor) -> Tensor:
    """``L_G = softplus(-D(G(z)))`` per sample."""
    return F.softplus(-fake_logits)


def d_logistic(real_logits: Tensor | None, fake_logits: Tensor | None) -> Tensor:
    """``L_D = softplus(D(G(z))) + softplus(-D(x))`` per sample (either term may be omitted)."""
    terms = [F.softplus(t) for t in (fake_logits, None if real_logits is None else -real_logits) if t is not None]
    if not terms:
        raise ValueError("d_logistic needs real or fake logits")
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def r1_penalty(real_logits: Tensor, real_img: Tensor) -> Tensor:
    """``||grad_x D(x)||^2`` per sample (sum over C, H, W), differentiable (create_graph).

    ``real_img`` must have ``requires_grad=True`` and be the tensor ``real_logits`` was computed
    from. Multiply by ``gamma / 2`` for ``L_R1``.
    """
    (grads,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True)
    return grads.square().sum(dim=[1, 2, 3])


def path_length_noise(img: Tensor, draw: Callable[..., Tensor] | None = None) -> Tensor:
    """``y ~ N(0, I) / sqrt(H * W)`` shaped like the image.

    ``draw(n, c, h, w)`` supplies the ``N(0, I)`` sample (a module's rank-consistent ``draw``);
    by default ``torch.randn`` on the image's device and dtype. Drawn in logical (NCHW) order
    whatever the image's memory format: ``randn_like`` would fill a channels-last image's memory in
    order, giving other noise for the same seed.
    """
    if draw is None:
        y = torch.randn(img.shape, device=img.device, dtype=img.dtype)
    else:
        y = draw(*img.shape)
    return y / math.sqrt(img.shape[2] * img.shape[3])


def path_lengths(img: Tensor, ws: Tensor, noise: Tensor, create_graph: bool = True) -> Tensor:
    """``sqrt(mean_over_ws(sum_over_w_dim(g^2)))`` with ``g = grad_ws sum(img * noise)``; per sample.
    ``create_graph=False``: the values only (not differentiable), for a first pass."""
    (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=create_graph)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: Tensor, pl_mean: Tensor, decay: float = 0.01) -> tuple[Tensor, Tensor]:
    """Return ``((len - a')^2, a')`` with ``a' = a + decay * (mean(len) - a)`` (the updated mean).

    As in the reference, the penalty uses the updated running mean, and the caller stores
    ``a'.detach()`` as the new ``pl_mean``.
    """
    new_mean = pl_mean.lerp(lengths.mean(), decay)
    return (lengths - new_mean).square(), new_mean


def path_length_surrogate(lengths: Tensor, new_mean: Tensor, total_excess: Tensor, count: int, decay: float) -> Tensor:
    """Per sample, a term whose gradient over a part of the batch is that part's share of the gradient of
    the whole batch's ``mean((len - a')^2)``, ``a' = a + decay * (mean(len) - a)`` (:func:`path_length_penalty`).

    For gradient accumulation: the penalty couples the samples through ``a'``, so a round cannot take it
    over its own rows. With the whole batch's ``a'`` and ``total_excess = sum(len - a')`` over all its
    ``count`` samples (from a first pass), ``d/d len_j`` of ``mean((len - a')^2)`` is
    ``(2 (len_j - a') - 2 * decay * total_excess / count) / count``, which is the gradient of
    ``((len_j - a')^2 - 2 * decay * total_excess / count * len_j) / count`` with ``a'`` and the excess held
    constant. Returns the bracket; its mean over the batch has the penalty's gradient.
    """
    new_mean, total_excess = new_mean.detach(), total_excess.detach()
    return (lengths - new_mean).square() - (2.0 * decay / count) * total_excess * lengths


def lazy_adam_params(lr: float, betas: tuple[float, float], interval: int | None) -> tuple[float, tuple[float, float]]:
    """Adam ``lr`` and ``betas`` for lazy regularization every ``interval`` steps (as NVIDIA's training loop).

    ``c = k / (k + 1)``: ``lr * c`` and ``beta ** c``. ``interval`` None or 0 means no lazy reg.
    """
    if not interval:
        return lr, (betas[0], betas[1])
    c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def ema_beta(batch_size: int, ema_kimg: float, cur_nimg: int, rampup: float | None = None) -> float:
    """G_ema decay ``0.5 ** (batch / max(ema_nimg, 1e-8))``, ``ema_nimg = min(ema_kimg*1000, nimg*rampup)``."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None and rampup > 0:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))
