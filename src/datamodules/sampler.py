"""An endless, resumable, rank-sharded index stream for GAN training.

GAN training counts images, not epochs (``cur_nimg``, kimg, as stylegan2-ada-pytorch), so the train
loader never ends and a resumed run must continue with exactly the next image. The global stream
is the concatenation of permutations ``0, 1, 2, ...`` of ``range(dataset_size)``; permutation ``k``
comes from a ``torch.Generator`` seeded with ``seed * 1_000_003 + k`` (identity when
``shuffle=False``). Rank ``r`` of ``world_size`` takes global positions ``p`` with
``p % world_size == r``; ``start`` skips the samples this rank already consumed. Only one
permutation is held at a time.

Use it with ``Trainer(use_distributed_sampler=False)`` under DDP: it shards by itself, and
Lightning's wrapper would try to list an infinite sampler.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["InfiniteSampler"]

_SEED_STRIDE = 1_000_003


class InfiniteSampler(Sampler[int]):
    """Yield dataset indices forever; see the module docstring for the stream's definition.

    Args:
        dataset_size: number of items to permute (> 0).
        seed: stream seed.
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of processes sharing the stream.
        shuffle: permute each pass (else ``0, 1, ..., n-1`` repeated).
        start: samples this rank has already consumed; the stream resumes right after them.

    Defines no ``__len__``, so Lightning treats the train epoch as infinite.
    """

    def __init__(
        self,
        dataset_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        start: int = 0,
    ) -> None:
        if dataset_size < 1:
            raise ValueError(f"InfiniteSampler: dataset_size must be positive, got {dataset_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"InfiniteSampler: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if start < 0:
            raise ValueError(f"InfiniteSampler: start must be >= 0, got {start}")
        self.dataset_size = int(dataset_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.shuffle = bool(shuffle)
        self.start = int(start)

    def permutation(self, k: int) -> list[int]:
        """Permutation ``k`` of the global stream."""
        if not self.shuffle:
            return list(range(self.dataset_size))
        generator = torch.Generator()
        generator.manual_seed((self.seed * _SEED_STRIDE + k) % 2**64)
        return torch.randperm(self.dataset_size, generator=generator).tolist()

    def __iter__(self) -> Iterator[int]:
        n, step = self.dataset_size, self.world_size
        position = self.rank + self.start * step  # global position of this rank's next sample
        while True:
            k, offset = divmod(position, n)
            perm = self.permutation(k)
            while offset < n:
                yield perm[offset]
                offset += step
            position = k * n + offset  # permutations with none of this rank's positions are skipped

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dataset_size={self.dataset_size}, seed={self.seed}, rank={self.rank}, "
            f"world_size={self.world_size}, shuffle={self.shuffle}, start={self.start})"
        )
