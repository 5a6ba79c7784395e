"""Latents: seeds -> ``z``, the truncation trick, and latent files (projected ``ws`` + noise maps).

The one home of these concepts for every tool, view, callback and network:

- :mod:`~src.latents.seeds`: ``seeds=`` parsing and ``z`` per seed (NVIDIA's ``RandomState(seed)`` rule);
- :mod:`~src.latents.truncation`: ``truncate(ws, w_avg, psi, cutoff)``, also used by the mapping network;
- :mod:`~src.latents.files`: the latent file format (``gamut-latents/1``), its noise maps and rendering.
"""

from src.latents.seeds import latents_from_seed, parse_seeds, seed_latents
from src.latents.truncation import truncate

__all__ = ["parse_seeds", "seed_latents", "latents_from_seed", "truncate"]
