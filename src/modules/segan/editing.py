"""Side-effect-free semantic edits on subspace coordinates (SEGan_Pytorch README, fig. 6).

An :class:`Edit` names one coordinate ``c_l[D]`` of the subspace at (layer L, subspace N) and how
to change it. Edits are forward arguments: they never touch module state, so they cannot leak
into G_ema, copies of the module or the next call (as model_SEG.py's mutable ``factor`` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

EDIT_OPS = ("set", "add", "scale")
EDIT_UNITS = ("raw", "sigma")


@dataclass(frozen=True)
class Edit:
    """Change coordinate ``dim`` (all of them when None) of subspace (``layer``, ``subspace``).

    ``op``: ``set`` (c = v), ``add`` (c = c + v), ``scale`` (c = c * v; ``dim=None`` is SEGAN's α).
    ``units``: ``raw``, or ``sigma``: ``set`` gives ``mean + v * std``, ``add`` adds ``v * std``,
    with the per-coordinate statistics of :meth:`SEGANGenerator.coord_stats` (``scale`` is unitless).
    ``value`` is a float, or a ``[B]`` tensor with one value per sample (batched traversals).
    """

    layer: int
    subspace: int
    dim: int | None = None
    op: str = "set"
    value: Any = 0.0
    units: str = "raw"

    def __post_init__(self) -> None:
        if self.op not in EDIT_OPS:
            raise ValueError(f"edit op={self.op!r}: allowed values are {', '.join(EDIT_OPS)}")
        if self.units not in EDIT_UNITS:
            raise ValueError(f"edit units={self.units!r}: allowed values are {', '.join(EDIT_UNITS)}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Edit:
        """``{layer, subspace, dim, op, value, units}``; ``L``/``N``/``D`` are accepted as aliases."""
        d = dict(d)
        for short, long in (("L", "layer"), ("N", "subspace"), ("D", "dim")):
            if short in d:
                d[long] = d.pop(short)
        unknown = sorted(set(d) - {"layer", "subspace", "dim", "op", "value", "units"})
        if unknown:
            raise ValueError(
                f"edit has unknown key(s) {', '.join(unknown)}; "
                "allowed: layer (L), subspace (N), dim (D), op, value, units"
            )
        return cls(**d)


def as_edits(edits: Iterable[Edit | Mapping[str, Any]] | None) -> list[Edit]:
    return [e if isinstance(e, Edit) else Edit.from_dict(e) for e in (edits or [])]


def resolve(edit: Edit, layout: list[list[int]], q: int) -> int:
    """Flat subspace id of ``edit``; ``layout[L][N]`` is that id. Errors name the valid range."""
    if not isinstance(edit.layer, int) or not 0 <= edit.layer < len(layout):
        raise ValueError(f"edit layer={edit.layer!r} does not exist: valid layers are 0..{len(layout) - 1}")
    subs = layout[edit.layer]
    if not isinstance(edit.subspace, int) or not 0 <= edit.subspace < len(subs):
        raise ValueError(
            f"edit subspace={edit.subspace!r} does not exist in layer {edit.layer}: "
            f"valid subspaces are 0..{len(subs) - 1}"
        )
    if edit.dim is not None and (not isinstance(edit.dim, int) or not 0 <= edit.dim < q):
        raise ValueError(f"edit dim={edit.dim!r} does not exist: valid dims are 0..{q - 1} (or None for all)")
    return subs[edit.subspace]


def apply_edits(
    coords: Tensor, edits: list[Edit], layout: list[list[int]], stats: tuple[Tensor, Tensor] | None = None
) -> Tensor:
    """Return edited coordinates ``[B, S, q]`` (a new tensor; ``coords`` is left untouched).

    ``stats`` = (mean, std), each ``[S, q]``, needed for ``units='sigma'``.
    """
    if not edits:
        return coords
    b, s, q = coords.shape
    out = coords.clone()
    for e in edits:
        sid = resolve(e, layout, q)
        dims = slice(None) if e.dim is None else e.dim
        v = torch.as_tensor(e.value, dtype=coords.dtype, device=coords.device)
        if v.ndim == 1:
            if v.shape[0] != b:
                raise ValueError(f"edit value has {v.shape[0]} entries; expected one per sample ({b})")
            if e.dim is None:
                v = v[:, None]
        elif v.ndim > 1:
            raise ValueError(f"edit value must be a number or a [B] tensor, got shape {list(v.shape)}")
        cur = out[:, sid, dims].clone()
        if e.op == "scale":
            new = cur * v
        else:
            if e.units == "sigma":
                if stats is None:
                    raise ValueError("edit units='sigma' needs coordinate statistics: pass stats=G.coord_stats()")
                mean, std = (t.to(coords)[sid, dims] for t in stats)
                v = v * std
                base = mean if e.op == "set" else cur
            else:
                base = torch.zeros_like(cur) if e.op == "set" else cur
            new = base + v
        out[:, sid, dims] = new.expand_as(cur) if new.shape != cur.shape else new
    return out


@torch.no_grad()
def traversal(
    generator,
    z: Tensor,
    layer: int,
    subspace: int,
    dim: int,
    values: list[float],
    op: str = "add",
    units: str = "sigma",
    stats: tuple[Tensor, Tensor] | None = None,
    coords: Tensor | None = None,
    noise_mode: str = "const",
    c: Tensor | None = None,
    ws: Tensor | None = None,
) -> Tensor:
    """Images ``[len(z) * len(values), C, H, W]``, rows = latents, columns = values.

    One forward pass per value; every image in a row shares its latent (and its noise with
    ``noise_mode='const'``), so a row shows only the edited coordinate moving. ``ws``
    ``[B, num_ws, w_dim]`` (e.g. a projected latent file) replaces the mapping of ``z`` (then ``z`` and
    ``c`` are unused).
    """
    rows = []
    for v in values:
        edit = Edit(layer=layer, subspace=subspace, dim=dim, op=op, value=float(v), units=units)
        if ws is not None:
            img = generator.synthesis(ws, noise_mode=noise_mode, edits=[edit], coords=coords, stats=stats)
        else:
            img = generator(z, c, noise_mode=noise_mode, edits=[edit], coords=coords, stats=stats)
        rows.append(img.float())
    images = torch.stack(rows, dim=1)  # [B, V, C, H, W]
    return images.reshape(-1, *images.shape[2:])


SUBSPACE_COLUMNS = ("id", "L", "N", "kind", "res", "slot", "q", "top |L| dims")


def subspace_table(generator) -> list[list]:
    """The subspace table as rows of :data:`SUBSPACE_COLUMNS` (``traverse.py table=true``, the explorer):
    :meth:`SEGANGenerator.subspaces` with the four dims of largest |L| as ``dim:|L|``."""
    rows = []
    for r in generator.subspaces():
        top = "-" if r["rank"] is None else ", ".join(f"{d}:{r['abs_L'][d]:.3g}" for d in r["rank"][:4])
        rows.append([r["id"], r["layer"], r["subspace"], r["kind"], r["resolution"], r["slot"], r["q"], top])
    return rows
