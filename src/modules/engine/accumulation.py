"""Gradient accumulation (``data.batch_gpu``, as NVIDIA's ``--batch-gpu``) and the rank-consistent draws.

With a per-device batch ``n`` and ``batch_gpu = b < n`` a phase runs in ``n / b`` rounds of ``b`` rows
and steps once (:func:`accumulate_rounds`). Round ``k`` takes rows ``k::rounds`` of the batch, and
every draw of round ``k`` is those rows of the one draw the whole batch makes (recorded in the first
round, replayed after: :class:`Rounds`), so the rounds are exactly the virtual ranks of a
``world * rounds``-process run: the same images, latents and labels, the same minibatch-stddev
groups, and (fp32, noise inputs off) the same result as the whole batch in one pass.

Outside rounds, :func:`draw_rows` is one global draw of which each rank takes its rows
``rank::world_size`` (the sampler's sharding): one process draws exactly what a plain
``torch.randn`` would, and N processes draw what one does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["Rounds", "RoundLoss", "rounds_for", "accumulate_rounds", "draw_rows", "draw_shared"]

#: ``round_loss(k, b, log_k)``: round ``k``'s loss over its ``b`` rows (a mean over them); values to
#: log go into ``log_k``
RoundLoss = Callable[[int, int, dict[str, Tensor]], Tensor]


class Rounds:
    """The state of one phase's accumulation rounds: which round runs (:meth:`begin`), and the draws
    the first round made, replayed in the same order by the later ones (:meth:`replay`).

    A family that runs rounds of its own (StyleGAN2's two-pass path length) makes one, runs each
    round inside ``GANModule.in_rounds(rounds)`` after :meth:`begin`, and may hand it to
    ``GANModule.accumulate(..., replay=rounds)`` for a second pass over the same draws.
    """

    def __init__(self, count: int) -> None:
        self.count, self.index = count, 0
        self.recorded: list[Tensor] = []
        self.position = 0

    def begin(self, index: int) -> None:
        """Start round ``index``: its draws replay the recorded ones from the first."""
        self.index, self.position = index, 0

    def replay(self, make: Callable[[], Tensor]) -> Tensor:
        """The next draw of this round: ``make()`` in the first pass over a position, recorded; the
        recorded tensor after."""
        if self.position < len(self.recorded):
            out = self.recorded[self.position]
        else:
            out = make()
            self.recorded.append(out)
        self.position += 1
        return out


def rounds_for(batch: int, batch_gpu: int | None) -> int:
    """How many accumulation rounds a per-device batch of ``batch`` rows takes (``batch / batch_gpu``)."""
    if batch_gpu is None or batch_gpu >= batch:
        return 1
    if batch % batch_gpu:
        raise ValueError(f"data.batch_gpu={batch_gpu} does not divide the per-device batch {batch}")
    return batch // batch_gpu


def accumulate_rounds(
    rounds: Rounds,
    rows: int,
    round_loss: RoundLoss,
    backward: Callable[[Tensor], None],
    log: dict[str, Tensor],
) -> None:
    """Run ``round_loss`` for each of ``rounds.count`` rounds of ``rows / count`` rows, handing each
    loss to ``backward`` (which adds its gradient with weight ``1 / count``); the values each round
    logs are averaged over the rounds into ``log``. The caller steps once afterwards."""
    b = rows // rounds.count
    logs: list[dict[str, Tensor]] = []
    for k in range(rounds.count):
        rounds.begin(k)
        logs.append({})
        backward(round_loss(k, b, logs[-1]))
    for key in logs[0]:
        log[key] = torch.stack([entry[key] for entry in logs]).mean()


def draw_rows(
    fn: Callable[..., Tensor],
    n: int,
    shape: tuple[int, ...],
    device: torch.device | str,
    rank: int,
    world_size: int,
    rounds: Rounds | None,
) -> Tensor:
    """``fn(n, *shape)`` (``torch.randn``, ``torch.rand``) for rank ``rank`` of ``world_size``: its rows
    of one global draw.

    In accumulation round ``k`` of ``R`` (``rounds``) the rows of virtual rank ``rank + world * k`` of
    ``world * R``: the first round draws for the whole batch and keeps the draw, later rounds take
    their rows of it, so the rounds together draw what one pass would.
    """
    if rounds is None:
        if world_size == 1:
            return fn(n, *shape, device=device)
        return fn(n * world_size, *shape, device=device)[rank::world_size]
    parts = world_size * rounds.count
    full = rounds.replay(lambda: fn(n * parts, *shape, device=device))
    if full.shape[0] != n * parts:
        first = full.shape[0] // parts
        raise RuntimeError(f"accumulation round {rounds.index} drew {n} rows where the first drew {first}")
    return full[rank + world_size * rounds.index :: parts]


def draw_shared(fn: Callable[[], Tensor], rounds: Rounds | None) -> Tensor:
    """``fn()``: a draw every rank and every accumulation round shares (e.g. the style-mixing cutoff)."""
    return fn() if rounds is None else rounds.replay(fn)
