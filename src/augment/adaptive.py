"""ADA's feedback rule (Karras et al. 2020, section 3; stylegan2-ada-pytorch ``training_loop.py``).

The overfitting heuristic ``r_t = E[sign(D(x_real))]`` is accumulated over ``interval``
iterations (every real logit D produces: the main D phase and R1's), then

    p <- max(p + sign(r_t - target) * (batch * interval) / (kimg * 1000), 0)

with ``batch`` the global batch, so ``p`` can go from 0 to 1 in ``kimg`` thousand images. The first
update comes after ``interval`` whole iterations and the next every ``interval`` after it
(:meth:`AdaptiveP.due`): stylegan2-ada-pytorch's loop counts the iteration first (``batch_idx += 1``)
and then adjusts when ``batch_idx % ada_interval == 0``. The running sums and ``p`` are buffers:
they travel in checkpoints (and the family's iteration count with them), so a resumed run adjusts
exactly as an uninterrupted one. Under DDP the sums are added over ranks before ``r_t`` is taken.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AdaptiveP(nn.Module):
    """Accumulates the signs of D's real logits and moves ``pipe.p`` toward ``target``.

    ``rt`` holds the last ``r_t`` (NaN before the first update), for logging.
    """

    sign_sum: Tensor  # buffers (register_buffer in __init__): travel in checkpoints
    count: Tensor
    rt: Tensor

    def __init__(self, target: float = 0.6, interval: int = 4, kimg: float = 500) -> None:
        super().__init__()
        self.target, self.interval, self.kimg = float(target), int(interval), float(kimg)
        self.register_buffer("sign_sum", torch.zeros([], dtype=torch.float64))
        self.register_buffer("count", torch.zeros([], dtype=torch.float64))
        self.register_buffer("rt", torch.full([], float("nan")))

    def due(self, iterations_done: int) -> bool:
        """Whether ``p`` is adjusted once ``iterations_done`` iterations (this one included) have run:
        after iterations ``interval``, ``2 interval``, ... (never after the first unless ``interval``
        is 1), as stylegan2-ada-pytorch ``training/training_loop.py`` does."""
        return iterations_done > 0 and iterations_done % self.interval == 0

    @torch.no_grad()
    def accumulate(self, real_logits: Tensor) -> None:
        """Add this rank's real logits (no host sync)."""
        self.sign_sum += real_logits.detach().sign().sum().double()
        self.count += real_logits.numel()

    @torch.no_grad()
    def update(self, p: Tensor, global_batch: int, all_reduce=None) -> Tensor:
        """Take ``r_t`` over what was accumulated (summed over ranks by ``all_reduce`` when given),
        move ``p`` in place, reset the sums; returns ``r_t``."""
        totals = torch.stack([self.sign_sum, self.count])
        if all_reduce is not None:
            all_reduce(totals)
        rt = totals[0] / totals[1].clamp_min(1)
        if totals[1] > 0:
            step = global_batch * self.interval / (self.kimg * 1000)
            p.copy_((p + torch.sign(rt - self.target).to(p.dtype) * step).clamp_min(0))
            self.rt.copy_(rt)
        self.sign_sum.zero_()
        self.count.zero_()
        return self.rt

    def extra_repr(self) -> str:
        return f"target={self.target}, interval={self.interval}, kimg={self.kimg}"
