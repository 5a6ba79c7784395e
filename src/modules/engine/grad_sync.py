"""Gradient averaging over the ranks with one flat ``all_reduce`` (as NVlabs/stylegan3
training/training_loop.py), used instead of DDP's reducer so every phase (double backward and
lazy intervals included) syncs exactly the parameters it trained."""

from __future__ import annotations

import torch

__all__ = ["average_gradients"]


def average_gradients(optimizer: torch.optim.Optimizer, world_size: int) -> None:
    """Average the gradients of ``optimizer``'s parameters over ``world_size`` processes, in place:
    one ``all_reduce`` of their concatenation, divided by ``world_size``, copied back."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    torch.distributed.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n
