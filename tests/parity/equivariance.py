"""Side-by-side check of gamut's equivariance metrics against NVIDIA's (docs/parity.md, "Equivariance metrics").

Runs NVlabs/stylegan3's ``metrics/equivariance.py`` (from a checkout given with ``--reference``, outside
this repository; nothing of it is copied here) and :mod:`src.metrics.equivariance` on the same small
random StyleGAN3 generator: NVIDIA's ``training/networks_stylegan3.py:Generator`` built with a fixed seed,
its biases, input affine, ``w_avg`` and magnitude EMAs randomised (``tests.parity.stylegan3_generator``),
and every tensor copied into gamut's :class:`~src.modules.stylegan3.networks.StyleGAN3Generator` under
:func:`~src.modules.stylegan3.networks.gamut_name`. Then

1. the image operators on the same images (the generator's output) and transforms: integer and
   fractional translation, the band-limit filter (up 4 and up 1), rotation and pseudo-rotation, masks
   included (max |difference|, and how many mask pixels differ);
2. each metric as NVIDIA's ``metric_main.py`` runs it (``compute_equivariance_metrics``, batch 4,
   ``translate_max`` 0.125, ``rotate_max`` 1) with ``num_samples`` images, beside gamut's computation of
   it on the same latents and transforms: NVIDIA draws them from torch's global RNG, in the order z, then
   the transform, per batch; gamut replays that order with the same seed (``draw_transform`` on the
   default generator) and sums with :class:`~src.metrics.equivariance.EquivarianceError`;
3. gamut's whole metric through :class:`~src.metrics.suite.MetricSuite`, on a minimal stand-in for the
   Lightning module holding the generator as ``G_ema``, with ``--seed`` and with ``--seed + 1``. gamut
   draws from a CPU generator seeded with ``seed`` (one process) in the same order as NVIDIA (z, labels,
   transform), so for an unconditional model on CPU the first equals NVIDIA's number; the second shows
   the sampling spread at this count.

NVIDIA's ops run their reference implementations on CPU (``filtered_lrelu`` forced to ``impl='ref'``).
NVIDIA's code imports ``pkg_resources``; the stand-in of ``tests.parity.stylegan3_generator`` is used.

    python -m tests.parity.equivariance --reference /path/to/stylegan3 --num-samples 128
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tests.parity.stylegan3_generator import force_reference_impl, import_reference, max_diff, randomise

ROOT = Path(__file__).resolve().parents[2]
Z_DIM = 32


def import_equivariance(path: str):
    """NVIDIA's ``metrics.equivariance`` and ``metrics.metric_utils`` (after :func:`import_reference`)."""
    sys.path.insert(0, str(Path(path).resolve()))
    import metrics.metric_utils as metric_utils  # type: ignore[import-not-found]

    import metrics.equivariance as eq_nv  # type: ignore[import-not-found]

    return eq_nv, metric_utils


def build(nets, cfg: str, res: int):
    """NVIDIA's generator (random, seed 0) and gamut's with its tensors copied in."""
    from src.modules.stylegan3.networks import STYLEGAN3_CONFIGS, StyleGAN3Generator, gamut_name

    arch = dict(STYLEGAN3_CONFIGS[cfg])
    arch["channel_base"] //= 16
    arch["channel_max"] //= 8
    common = dict(z_dim=Z_DIM, w_dim=Z_DIM, img_channels=3, **arch)
    torch.manual_seed(0)
    G_nv = nets.Generator(c_dim=0, img_resolution=res, mapping_kwargs=dict(num_layers=2), **common).eval()
    randomise(G_nv, 1)
    G = StyleGAN3Generator(num_classes=0, resolution=(res, res), **common).eval()
    G.load_state_dict({gamut_name(k): v for k, v in G_nv.state_dict().items()})
    return G_nv.requires_grad_(False), G.requires_grad_(False)


def mask_mismatch(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a != b).sum())


def operators(eq_nv, G, res: int) -> dict:
    """The image operators on the generator's images, gamut against NVIDIA."""
    from src.metrics import equivariance as eq

    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        x = G(torch.randn(2, Z_DIM, generator=g)).float()
    x = x / x.abs().max()  # the whole [-1, 1] range
    out: dict = {}
    worst = {"int": 0.0, "frac": 0.0, "rot": 0.0, "pseudo": 0.0}
    masks = {"int": 0, "frac": 0, "rot": 0, "pseudo": 0}
    for _ in range(8):
        t = (torch.rand(2, generator=g) * 2 - 1) * 0.125
        ti = (t * res).round() / res
        z_nv, m_nv = eq_nv.apply_integer_translation(x, ti[0], ti[1])
        z, m = eq.integer_translation(x, round(float(ti[0]) * res), round(float(ti[1]) * res))
        worst["int"], masks["int"] = max(worst["int"], max_diff(z_nv, z)), masks["int"] + mask_mismatch(m_nv, m)
        z_nv, m_nv = eq_nv.apply_fractional_translation(x, t[0], t[1])
        z, m = eq.fractional_translation(x, float(t[0]) * res, float(t[1]) * res)
        worst["frac"], masks["frac"] = max(worst["frac"], max_diff(z_nv, z)), masks["frac"] + mask_mismatch(m_nv, m)
        angle = float((torch.rand([], generator=g) * 2 - 1) * math.pi)
        z_nv, m_nv = eq_nv.apply_fractional_rotation(x, angle)
        z, m = eq.fractional_rotation(x, angle)
        worst["rot"], masks["rot"] = max(worst["rot"], max_diff(z_nv, z)), masks["rot"] + mask_mismatch(m_nv, m)
        z_nv, m_nv = eq_nv.apply_fractional_pseudo_rotation(x, angle)
        z, m = eq.fractional_pseudo_rotation(x, angle)
        worst["pseudo"] = max(worst["pseudo"], max_diff(z_nv, z))
        masks["pseudo"] += mask_mismatch(m_nv, m)
    for up, amax in ((4, 6), (1, 6), (4, 16)):
        mat = eq_nv.rotation_matrix(0.7)
        f_nv = eq_nv.construct_affine_bandlimit_filter(mat, a=3, amax=amax, up=up)
        out[f"filter_up{up}_amax{amax}"] = max_diff(f_nv, eq.bandlimit_filter(mat, a=3, amax=amax, up=up))
    for k in worst:
        out[f"{k}_max_diff"] = worst[k]
        out[f"{k}_mask_pixels_differing"] = masks[k]
    out["image_std"] = float(x.std())
    return out


def gamut_same_draws(G, transform: str, num_samples: int, seed: int) -> float:
    """gamut's metric on NVIDIA's draws: torch's global RNG seeded with ``seed``, per batch z then the transform."""
    from src.metrics.equivariance import EquivarianceError, draw_transform, transformed_pair

    synthesis, unit = G.synthesis, G.synthesis.input_transform_unit()
    meter = EquivarianceError()
    torch.manual_seed(seed)
    with torch.no_grad():
        for _ in range(-(-num_samples // 4)):
            z = torch.randn([4, Z_DIM])
            value = draw_transform(transform, torch.default_generator, unit, 0.125, 1.0)
            ws = G.mapping(z, None, psi=1.0)

            def synthesize(matrix: torch.Tensor, ws: torch.Tensor = ws) -> torch.Tensor:
                with synthesis.input_transform(matrix):
                    return synthesis(ws, noise_mode="const")

            meter.update(*transformed_pair(synthesize, synthesize(torch.eye(3)), transform, value, unit))
    return float(meter.compute())


class StandIn(torch.nn.Module):
    """The part of a gamut Lightning module the metric reads: ``G_ema``, colour space, labels, ``z_dim``."""

    def __init__(self, G) -> None:
        from src.colorspaces import get_colorspace

        super().__init__()
        self.G_ema, self.colorspace, self.num_classes = G, get_colorspace("rgb"), 0

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def z_dim(self) -> int:
        return self.G_ema.z_dim

    def labels_to_onehot(self, labels):
        return None

    def label_frequencies(self):
        return None


def metrics(eq_nv, metric_utils, G_nv, G, num_samples: int, seed: int) -> dict:
    from src.metrics.suite import MetricSuite, flatten

    out: dict = {}
    flags = {"int": "compute_eqt_int", "frac": "compute_eqt_frac", "rot": "compute_eqr"}
    names = {"int": f"eqt{num_samples}_int", "frac": f"eqt{num_samples}_frac", "rot": f"eqr{num_samples}"}
    ours = flatten(MetricSuite(list(names.values()), weights_dir=ROOT / "unused", seed=seed).run(StandIn(G)))
    other = flatten(MetricSuite(list(names.values()), weights_dir=ROOT / "unused", seed=seed + 1).run(StandIn(G)))
    for transform, flag in flags.items():
        opts = metric_utils.MetricOptions(G=G_nv, num_gpus=1, rank=0, device=torch.device("cpu"))
        opts.G_kwargs.update(force_fp32=True)  # as metric_main.py's eqt50k_int, eqt50k_frac, eqr50k
        torch.manual_seed(seed)
        start = time.perf_counter()
        nv = float(eq_nv.compute_equivariance_metrics(opts, num_samples=num_samples, batch_size=4, **{flag: True}))
        took = time.perf_counter() - start
        same = gamut_same_draws(G, transform, num_samples, seed)
        out[names[transform]] = dict(
            nvidia=round(nv, 4), gamut_same_draws=round(same, 4), difference=round(same - nv, 5),
            gamut_metric_suite=round(ours[names[transform]], 4),
            gamut_metric_suite_next_seed=round(other[names[transform]], 4), nvidia_seconds=round(took, 1),
        )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="a checkout of NVlabs/stylegan3")
    parser.add_argument("--res", type=int, default=32)
    parser.add_argument("--num-samples", type=int, default=128)
    parser.add_argument("--cfg", default="t,r", help="configs to check: t, r or t,r")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    np.random.seed(0)
    nets, _, flrelu = import_reference(args.reference)
    force_reference_impl(flrelu)
    eq_nv, metric_utils = import_equivariance(args.reference)
    for cfg in args.cfg.split(","):
        G_nv, G = build(nets, cfg, args.res)
        with torch.no_grad():
            z = torch.randn(4, Z_DIM)
            generator_diff = max_diff(G_nv(z, torch.zeros(4, 0)), G(z))
        row = dict(cfg=cfg, res=args.res, generator_max_diff=generator_diff, **operators(eq_nv, G, args.res))
        print(json.dumps(row), flush=True)
        print(
            json.dumps(
                dict(
                    cfg=cfg,
                    num_samples=args.num_samples,
                    **metrics(eq_nv, metric_utils, G_nv, G, args.num_samples, args.seed),
                )
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
