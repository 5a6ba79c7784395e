"""ChromaGAN's losses as plain functions of tensors (pvitoria/ChromaGAN, SOURCE/ChromaGAN.py).

``L_G = lambda_color * L_col + lambda_kl * L_kl + lambda_adv * L_adv`` (1.0, 0.003, 0.1) and
``L_D = mean D(fake) - mean D(real) + lambda_gp * GP`` (lambda_gp = 10), all in normalised ab space.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["color_l2", "class_kl", "generator_adversarial", "critic_wasserstein", "gradient_penalty"]


def color_l2(ab_fake: Tensor, ab_real: Tensor) -> Tensor:
    """Mean over all N x 2 x H x W elements of the squared error (Keras ``mse``)."""
    return F.mse_loss(ab_fake.float(), ab_real.float())


def class_kl(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """KL(teacher || student), summed over classes and averaged over the batch (``batchmean``).

    Both arguments are logits; softmax runs over the given columns (for TinyImageNet, the teacher's
    200 mapped ImageNet columns, which equals renormalising its 1000-way softmax; jeniasivets/chromagan).
    """
    return F.kl_div(
        F.log_softmax(student_logits.float(), dim=1),
        F.log_softmax(teacher_logits.float(), dim=1),
        log_target=True,
        reduction="batchmean",
    )


def generator_adversarial(fake_scores: Tensor) -> Tensor:
    """``-mean D(L, ab_fake)`` over the batch and the patches."""
    return -fake_scores.float().mean()


def critic_wasserstein(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """``mean D(fake) - mean D(real)`` (the critic minimises it)."""
    return fake_scores.float().mean() - real_scores.float().mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], l_in: Tensor, ab_real: Tensor, ab_fake: Tensor, alpha: Tensor | None = None
) -> Tensor:
    """WGAN-GP on ab only: ``mean_n (1 - ||grad_{ab_hat} sum D(L, ab_hat)||_2)^2`` (Gulrajani et al. 2017).

    ``ab_hat = alpha * ab_real + (1 - alpha) * ab_fake`` with one ``alpha ~ U(0, 1)`` per sample; L is
    shared and not differentiated; the norm runs over each sample's 2 x H x W gradient. Computed in
    float32 with autocast off. Differentiable (``create_graph=True``) for the critic's update.
    """
    n = ab_real.shape[0]
    if alpha is None:
        alpha = torch.rand(n, 1, 1, 1, device=ab_real.device)
    with torch.autocast(device_type=ab_real.device.type, enabled=False):
        alpha = alpha.float().view(n, 1, 1, 1)
        ab_hat = (alpha * ab_real.float() + (1.0 - alpha) * ab_fake.detach().float()).requires_grad_(True)
        scores = critic(torch.cat([l_in.float().detach(), ab_hat], dim=1))
        (grad,) = torch.autograd.grad(scores.sum(), ab_hat, create_graph=True)
        norm = grad.flatten(1).norm(2, dim=1)
        return ((1.0 - norm) ** 2).mean()
