"""The explorer's SEGAN part: the one module of the page that knows the SEGAN family.

:mod:`src.explorer.views` stays family-neutral and asks this module whether the loaded generator has
subspaces and, if so, for its layout, its subspace table and an edited image. Each function is a thin
call into what ``scripts/traverse.py`` uses (``src.modules.segan.editing``), so a slider position and
the tool's image for the same coordinate are the same pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.latents.seeds import seed_latents
from src.modules.segan.editing import SUBSPACE_COLUMNS, Edit, resolve, subspace_table, traversal
from src.modules.segan.generator import SEGANGenerator

__all__ = [
    "SUBSPACE_COLUMNS", "is_segan", "layout", "table", "subspaces_in", "coord_stats", "check_edit", "latents",
    "edited_images",
]  # fmt: skip


def is_segan(generator: torch.nn.Module) -> bool:
    """Whether ``generator`` has SEGAN's per-layer subspaces (the page then shows their sliders)."""
    return isinstance(generator, SEGANGenerator)


def _segan(generator: torch.nn.Module) -> SEGANGenerator:
    """``generator`` itself, checked to be SEGAN's: the page calls the functions below only when
    :func:`is_segan` (a ``TypeError`` naming its class otherwise)."""
    if not isinstance(generator, SEGANGenerator):
        raise TypeError(f"{type(generator).__qualname__} is not a SEGAN generator")
    return generator


def layout(generator: torch.nn.Module) -> dict:
    """What the page lays the sliders out by: mode, number of layers, subspaces per layer, dimension q."""
    generator = _segan(generator)
    syn = generator.synthesis
    return {"mode": generator.mode, "layers": len(syn.layout), "subspaces": [len(s) for s in syn.layout], "q": syn.q}


def table(generator: torch.nn.Module) -> list[list]:
    """traverse.py ``table=true``: one row per subspace (:data:`SUBSPACE_COLUMNS`)."""
    return subspace_table(_segan(generator))


def subspaces_in(generator: torch.nn.Module, layer: int) -> int:
    return len(_segan(generator).synthesis.layout[int(layer)])


def coord_stats(generator: torch.nn.Module, n: int, c: Tensor | None) -> tuple[Tensor, Tensor]:
    """Mean and std ``[S, q]`` of the coordinates over ``n`` seeded latents with labels ``c``: the σ units
    of traverse.py (:meth:`SEGANGenerator.coord_stats`)."""
    return _segan(generator).coord_stats(n=n, c=c)


def check_edit(generator: torch.nn.Module, layer: int, subspace: int, dim: int, op: str, units: str) -> None:
    """A ``ValueError`` naming the coordinate when (layer, subspace, dim) does not exist."""
    syn = _segan(generator).synthesis
    resolve(Edit(layer=layer, subspace=subspace, dim=dim, op=op, units=units), syn.layout, syn.q)


def latents(generator: torch.nn.Module, seeds: list[int]) -> tuple[Tensor, Tensor | None]:
    """``z`` of ``seeds`` and, when the generator samples its coordinates, the seeds' coordinates
    (drawn right after ``z`` from the same stream, as traverse.py draws them)."""
    generator = _segan(generator)
    syn = generator.synthesis
    sampled = syn.coords == "sampled"
    n_l, q = (syn.num_layers, syn.q) if sampled else (0, 0)
    return seed_latents(seeds, generator.z_dim, n_l, q)


def edited_images(
    generator: torch.nn.Module,
    z: Tensor,
    coordinate: tuple[int, int, int],
    value: float,
    op: str,
    units: str,
    stats,
    coords: Tensor | None,
    noise_mode: str,
    labels: Tensor | None,
    ws: Tensor,
) -> Tensor:
    """The images of ``z`` with coordinate (layer, subspace, dim) moved by ``value`` (traverse.py's
    traversal with one value), in the model's colour space."""
    layer, subspace, dim = coordinate
    return traversal(
        _segan(generator), z, layer, subspace, dim, [float(value)], op, units, stats, coords, noise_mode, labels, ws=ws
    )
