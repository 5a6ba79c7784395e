"""SEGAN generator: the StyleGAN2 generator plus one linear subspace per layer (curefate/SEGan_Pytorch).

Layers that consume a w are indexed (L = block, N = position in the block): block 0 has
N=0 conv and N=1 toRGB, later blocks N=0 conv_up, N=1 conv, N=2 toRGB, so 14 layers and K = 10
w slots at 64 px. Each layer reads the coordinates ``c_l`` of its own subspace: the w slot feeding
it (``coords: w``, the README semantics) or, for ``eigen`` with ``coords: sampled``, its own
``z_l ~ N(0, I_q)``. Edits (:mod:`src.modules.segan.editing`) act on ``c_l``, so a slot shared by
toRGB_b and conv_up_{b+1} is edited for one layer only.

Modes: 0 baseline (``w'_l = c_l``); 1 ``phi_l = U_l (L_l * c_l) + mu_l`` added to the layer's
output map, modulation keeps w; 2 ``w'_l`` from a w->w subspace before modulation (``faithful``:
their diagonal collapse; ``eigen``: an orthonormal basis); 3 ``w'_l = L_l * c_l``.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

import torch
from torch import Tensor, nn

from src.modules.segan.editing import Edit, apply_edits, as_edits
from src.modules.segan.subspace import ColumnSumSubspace, EigenSubspace, FeatureSubspace, ScaleSubspace, Subspace
from src.modules.stylegan2.generator import Generator, SynthesisNetwork

MODES = {
    0: "baseline StyleGAN2",
    1: "subspace added to feature maps",
    2: "w->w subspace before modulation",
    3: "only-L scaling before modulation",
}
VARIANTS = ("faithful", "eigen")
COORDS = ("w", "sampled")


def check_subspace_config(mode: Any, variant: str, coords: str, q: int, w_dim: int) -> None:
    """One clear error for a mode/variant/coords/q combination that does not exist."""
    if isinstance(mode, bool) or mode not in MODES:
        raise ValueError(
            f"model.mode={mode!r}: valid modes are 0..3 ({'; '.join(f'{k} {v}' for k, v in MODES.items())})"
        )
    if variant not in VARIANTS:
        raise ValueError(f"model.subspace.variant={variant!r}: allowed values are {', '.join(VARIANTS)}")
    if variant == "eigen" and mode != 2:
        raise ValueError(
            f"model.subspace.variant='eigen' does not apply to model.mode={mode}: "
            "it is a mode-2 variant (use model.mode=2, or variant=faithful)"
        )
    if coords not in COORDS:
        raise ValueError(f"model.subspace.coords={coords!r}: allowed values are {', '.join(COORDS)}")
    if coords == "sampled" and variant != "eigen":
        raise ValueError(
            f"model.subspace.coords='sampled' needs model.mode=2 and model.subspace.variant=eigen "
            f"(got mode {mode}, variant {variant!r})"
        )
    if coords == "w" and q != w_dim:
        raise ValueError(
            f"model.subspace.q={q}: with coords=w the coordinates are w itself, so q must equal "
            f"model.w_dim={w_dim} (use q=null)"
        )
    if not isinstance(q, int) or q < 1 or q > w_dim:
        raise ValueError(f"model.subspace.q={q!r}: expected 1..{w_dim} (model.w_dim)")


class SEGANSynthesis(SynthesisNetwork):
    """The StyleGAN2 synthesis network with a subspace per w-consuming layer (their model_SEG.py)."""

    slot_index: Tensor  # buffer (register_buffer in __init__)

    def __init__(
        self,
        mode: int = 0,
        variant: str = "faithful",
        q: int | None = None,
        coords: str = "w",
        U_init: str = "segan",
        L_init: str = "ones",
        hard: str = "none",
        **synthesis_kwargs: Any,
    ) -> None:
        """The subspace arguments (see the module docstring); ``synthesis_kwargs`` are
        :class:`SynthesisNetwork`'s, passed through unchanged."""
        super().__init__(**synthesis_kwargs)
        w_dim = self.w_dim
        q = w_dim if q is None else q
        check_subspace_config(mode, variant, coords, q, w_dim)
        self.mode, self.variant, self.q, self.coords, self.hard = mode, variant, q, coords, hard
        # The layer table in SEGAN's terms: layer L = block, subspace N = position in the block.
        self.layers: list[dict[str, Any]] = [
            dict(
                id=r["id"],
                layer=r["block"],
                subspace=r["position"],
                kind=r["kind"],
                size=r["size"],
                slot=r["slot"],
                channels=r["channels"],
            )
            for r in self.layer_table()
        ]
        self.layout: list[list[int]] = [
            [l["id"] for l in self.layers if l["layer"] == b] for b in range(len(self.blocks))
        ]
        self.register_buffer("slot_index", torch.tensor([l["slot"] for l in self.layers]), persistent=False)
        self.spaces = nn.ModuleList(self._make_subspace(l, U_init, L_init) for l in self.layers) if mode else None

    def _make_subspace(self, layer: dict, U_init: str, L_init: str) -> Subspace:
        if self.mode == 1:
            return FeatureSubspace(layer["channels"], layer["size"], self.q, U_init, L_init, self.hard)
        if self.mode == 3:
            return ScaleSubspace(self.q, L_init)
        if self.variant == "faithful":
            return ColumnSumSubspace(layer["channels"], layer["size"], self.q, L_init)
        return EigenSubspace(self.w_dim, self.q, L_init, residual=self.coords == "sampled", hard=self.hard)

    # ------------------------------------------------------------------------------------------

    def coordinates(self, ws: Tensor, coords: Tensor | None = None) -> Tensor:
        """Per-layer coordinates ``[B, S, q]``: the slot's w, or given/sampled ``z_l`` (``coords: sampled``)."""
        if self.coords == "w":
            if coords is not None:
                raise ValueError("coords= is only for model.subspace.coords=sampled; here the coordinates are w")
            return ws[:, self.slot_index]
        shape = (ws.shape[0], self.num_layers, self.q)
        if coords is None:
            return torch.randn(shape, device=ws.device, dtype=ws.dtype)
        if tuple(coords.shape) != shape:
            raise ValueError(f"coords must be {list(shape)}, got {list(coords.shape)}")
        return coords.to(ws.dtype)

    def orth_bases(self) -> list[Tensor]:
        """Bases the orthogonality regulariser acts on (EigenGAN): mode 1 and mode 2 ``eigen``.

        A layer whose map is smaller than q (toRGB at 4x4: 3*16 = 48 < 64) cannot hold q orthonormal
        columns and is left out.
        """
        spaces = self.typed_spaces()
        bases = [s.U for s in spaces if isinstance(s, (FeatureSubspace, EigenSubspace))]  # the kinds with a U
        if len(bases) < len(spaces):
            return []
        return [u for u in bases if u.shape[0] >= u.shape[1]]

    def typed_spaces(self) -> list[Subspace]:
        """``spaces`` as what they are (an ``nn.ModuleList`` is typed as holding plain modules); empty in mode 0."""
        return [] if self.spaces is None else cast("list[Subspace]", list(self.spaces))

    def forward(  # type: ignore[override]  # edit arguments in place of the layer hooks, which it fills itself
        self,
        ws: Tensor,
        noise_mode: str = "random",
        fused: bool = False,
        edits: list[Edit | dict] | None = None,
        coords: Tensor | None = None,
        stats: tuple[Tensor, Tensor] | None = None,
        return_styles: bool = False,
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """``ws`` ``[B, K, w_dim]`` (the mapping output) -> image; pure function of its arguments.

        ``return_styles``: also return ``{"ws", "coords", "layer_ws"}`` with the edited coordinates
        ``[B, S, q]`` and the w each layer's modulation used ``[B, S, w_dim]``.
        """
        edit_list = as_edits(edits)
        if self.mode == 0 and not edit_list and not return_styles:
            return super().forward(ws, noise_mode=noise_mode, fused=fused)  # exactly StyleGAN2
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        c = apply_edits(self.coordinates(ws, coords), edit_list, self.layout, stats)
        slot_ws = ws[:, self.slot_index]
        layer_adds: list[Tensor | None] | None = None
        if self.mode == 0:
            layer_ws = c
        else:
            spaces = self.spaces
            assert spaces is not None  # built in modes 1 to 3
            if self.mode == 1:
                layer_ws = slot_ws
                layer_adds = [space(c[:, i]) for i, space in enumerate(spaces)]
            elif self.variant == "eigen" and self.coords == "sampled":
                layer_ws = torch.stack([space(c[:, i], slot_ws[:, i]) for i, space in enumerate(spaces)], dim=1)
            else:
                layer_ws = torch.stack([space(c[:, i]) for i, space in enumerate(spaces)], dim=1)
        img = super().forward(ws, noise_mode=noise_mode, fused=fused, layer_ws=layer_ws, layer_adds=layer_adds)
        if return_styles:
            return img, {"ws": ws, "coords": c, "layer_ws": layer_ws}
        return img

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode}, variant={self.variant}, coords={self.coords}, q={self.q}, "
            f"layers={self.num_layers}, num_ws={self.num_ws}"
        )


def _subspace_defaults() -> dict[str, Any]:
    """SEGANSynthesis's own arguments and their defaults (read from its signature, stated once)."""
    params = inspect.signature(SEGANSynthesis.__init__).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"}


class SEGANGenerator(Generator):
    """Mapping + :class:`SEGANSynthesis`; same call as the StyleGAN2 generator plus edit arguments.

    Keywords: :class:`SEGANSynthesis`'s subspace arguments (``mode``, ``variant``, ``q``, ``coords``,
    ``U_init``, ``L_init``, ``hard``) and :class:`Generator`'s, passed through unchanged.
    """

    synthesis: SEGANSynthesis  # made by make_synthesis

    def __init__(self, **kwargs: Any) -> None:
        # read by make_synthesis(), which Generator.__init__ calls
        self._subspace_args = {k: kwargs.pop(k, v) for k, v in _subspace_defaults().items()}
        super().__init__(**kwargs)
        self.init_kwargs |= self._subspace_args

    def make_synthesis(self, **kwargs) -> SEGANSynthesis:
        return SEGANSynthesis(**kwargs, **self._subspace_args)

    @property
    def mode(self) -> int:
        return self.synthesis.mode

    def subspaces(self) -> list[dict[str, Any]]:
        """The subspace table: id, layer L, subspace N, kind, resolution, w slot, q,
        ``abs_L`` (|L| per dim; None in mode 0) and ``rank`` (dims by |L|, largest first)."""
        rows = []
        spaces = self.synthesis.typed_spaces()
        for i, layer in enumerate(self.synthesis.layers):
            row = dict(layer)
            row["resolution"] = "x".join(map(str, row.pop("size")))
            row["q"] = self.synthesis.q
            space = spaces[i] if spaces else None
            if space is not None:
                abs_l = space.L.detach().abs().float().cpu()
                row["abs_L"] = abs_l.tolist()
                row["rank"] = torch.argsort(abs_l, descending=True, stable=True).tolist()
            else:
                row["abs_L"] = row["rank"] = None
            rows.append(row)
        return rows

    @torch.no_grad()
    def coord_stats(
        self, n: int = 10_000, seed: int = 0, batch: int = 1000, c: Tensor | None = None, psi: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """Mean and std ``[S, q]`` of every subspace's coordinates over ``n`` seeded latents (σ units).

        Draws from its own generator, so it never shifts the global random stream. ``c``: one-hot
        labels ``[n, num_classes]`` for a conditional generator (row ``i`` for latent ``i``).
        """
        gen = torch.Generator().manual_seed(seed)
        device = next(self.parameters()).device
        total: Tensor | None = None
        sq: Tensor | None = None
        done = 0
        while done < n:
            m = min(batch, n - done)
            z = torch.randn(m, self.z_dim, generator=gen).to(device)
            coords = None
            if self.synthesis.coords == "sampled":
                coords = torch.randn(m, self.synthesis.num_layers, self.synthesis.q, generator=gen).to(device)
            labels = None if c is None else c[done : done + m].to(device)
            x = self.synthesis.coordinates(self.mapping(z, labels, psi=psi), coords).double()
            total = x.sum(0) if total is None else total + x.sum(0)
            sq = x.square().sum(0) if sq is None else sq + x.square().sum(0)
            done += m
        assert total is not None and sq is not None, "coord_stats needs n >= 1"
        mean = total / n
        std = (sq / n - mean.square()).clamp_min(0).sqrt()
        return mean.float(), std.float()
