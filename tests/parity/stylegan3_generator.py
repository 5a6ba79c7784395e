"""Side-by-side check of gamut's StyleGAN3 generator against NVIDIA's (docs/parity.md, "StyleGAN3 generator").

Builds NVlabs/stylegan3's ``training/networks_stylegan3.py:Generator`` (from a checkout given with
``--reference``, outside this repository; nothing of it is copied here) for configs T and R at a small
size on CPU, where NVIDIA's ops run their reference implementations (``filtered_lrelu`` is called with
``impl='ref'`` here, and the script checks that the reference ran), and gamut's
:class:`~src.modules.stylegan3.networks.StyleGAN3Generator` with the same arguments. It then

1. checks that every NVIDIA tensor has a gamut counterpart of the same shape under
   :func:`~src.modules.stylegan3.networks.gamut_name` (and nothing more), and that gamut's own filter
   design and padding equal NVIDIA's before anything is copied;
2. copies every parameter and buffer into gamut's generator (after randomising the zero-initialised
   biases, the input's affine weights, ``w_avg`` and the magnitude EMAs, so that they all matter);
3. compares ``G(z, c)`` for psi 1 and 0.7, with a translate/rotate input transform (set for NVIDIA as
   its ``gen_images.py`` does, for gamut with :func:`~src.modules.stylegan3.networks.input_transform`),
   with gamut's fused convolution path, and one training-style pass with ``update_emas=True``
   (outputs and the updated ``w_avg``/``magnitude_ema`` buffers).

Prints one JSON line per case with the max absolute differences. NVIDIA's code imports ``pkg_resources``
(``parse_version``), which recent setuptools no longer ships; a stand-in from ``packaging`` is installed
for the import.

    python -m tests.parity.stylegan3_generator --reference /path/to/stylegan3
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import packaging.version
import torch

ROOT = Path(__file__).resolve().parents[2]


def import_reference(path: str):
    """NVIDIA's ``training.networks_stylegan3``, ``gen_images`` and ``torch_utils.ops.filtered_lrelu``."""
    if "pkg_resources" not in sys.modules:
        shim = types.ModuleType("pkg_resources")
        shim.parse_version = packaging.version.parse  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    sys.path.insert(0, str(Path(path).resolve()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import gen_images  # type: ignore[import-not-found]
        import training.networks_stylegan3 as nets
        from torch_utils.ops import filtered_lrelu as flrelu  # type: ignore[import-not-found]
    return nets, gen_images, flrelu


def force_reference_impl(flrelu) -> dict[str, int]:
    """Route NVIDIA's ``filtered_lrelu`` to ``impl='ref'`` and count the reference's calls."""
    calls = {"ref": 0}
    original, ref = flrelu.filtered_lrelu, flrelu._filtered_lrelu_ref

    def counted_ref(*args, **kwargs):
        calls["ref"] += 1
        return ref(*args, **kwargs)

    def as_ref(*args, **kwargs):
        kwargs["impl"] = "ref"
        return original(*args, **kwargs)

    flrelu._filtered_lrelu_ref = counted_ref
    flrelu.filtered_lrelu = as_ref
    return calls


def randomise(G_nv: torch.nn.Module, seed: int) -> None:
    """Make every tensor matter: random biases, input affine, w_avg and magnitude EMAs (positive)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in G_nv.named_parameters():
            if name.endswith("bias"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
            if name == "synthesis.input.affine.weight":
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
        for name, b in G_nv.named_buffers():
            if name.endswith("magnitude_ema"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
            if name.endswith("w_avg"):
                b.copy_(0.5 * torch.randn(b.shape, generator=g))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def run_case(nets, gen_images, calls, cfg: str, c_dim: int, img_channels: int, res: int) -> dict:
    from src.modules.stylegan3.networks import STYLEGAN3_CONFIGS, StyleGAN3Generator, gamut_name
    from src.nn.input_transform import user_transform

    arch = dict(STYLEGAN3_CONFIGS[cfg])
    arch["channel_base"] //= 16  # small widths: 2048/128 (T), 4096/256 (R)
    arch["channel_max"] //= 4
    common = dict(z_dim=64, w_dim=64, img_channels=img_channels, magnitude_ema_beta=0.9, **arch)
    torch.manual_seed(0)
    G_nv = nets.Generator(c_dim=c_dim, img_resolution=res, mapping_kwargs=dict(num_layers=2), **common).eval()
    randomise(G_nv, 1)
    G = StyleGAN3Generator(num_classes=c_dim, resolution=(res, res), num_fp16_res=4, **common).eval()

    nv_state, ours = G_nv.state_dict(), G.state_dict()
    mapped = {gamut_name(k): v for k, v in nv_state.items()}
    missing, extra = sorted(set(ours) - set(mapped)), sorted(set(mapped) - set(ours))
    shapes = [k for k in mapped if k in ours and mapped[k].shape != ours[k].shape]
    assert not missing and not extra and not shapes, (missing, extra, shapes)
    filters = max(
        (max_diff(mapped[k], ours[k]) for k in mapped if k.endswith(("up_filter", "down_filter"))), default=0.0
    )
    nv_layers = [getattr(G_nv.synthesis, n) for n in G_nv.synthesis.layer_names]
    assert [n for n in G_nv.synthesis.layer_names] == G.synthesis.layer_names
    for nv, ly in zip(nv_layers, G.synthesis.typed_layers()):
        assert list(nv.padding) == ly.padding and nv.up_factor == ly.up_factor and nv.down_factor == ly.down_factor
        assert (int(nv.out_size[1]), int(nv.out_size[0])) == ly.out_size and nv.use_fp16 == ly.use_fp16
    G.load_state_dict(mapped)

    g = torch.Generator().manual_seed(2)
    n = 4
    z = torch.randn(n, 64, generator=g)
    c = torch.nn.functional.one_hot(torch.randint(0, c_dim, (n,), generator=g), c_dim).float() if c_dim else None
    c_nv = c if c is not None else torch.zeros(n, 0)
    out: dict = dict(cfg=cfg, c_dim=c_dim, img_channels=img_channels, res=res, filters_max_diff=filters)
    before = calls["ref"]
    with torch.no_grad():
        out["psi1"] = max_diff(G_nv(z, c_nv, truncation_psi=1), G(z, c, psi=1.0))
        out["psi0.7"] = max_diff(G_nv(z, c_nv, truncation_psi=0.7), G(z, c, psi=0.7))
        out["psi0.7_cutoff4"] = max_diff(
            G_nv(z, c_nv, truncation_psi=0.7, truncation_cutoff=4), G(z, c, psi=0.7, cutoff=4)
        )
        m = np.linalg.inv(gen_images.make_transform((0.1, -0.05), 15.0))
        G_nv.synthesis.input.transform.copy_(torch.from_numpy(m))
        G.synthesis.input.transform.copy_(user_transform((0.1, -0.05), 15.0))
        out["transform_buffer"] = max_diff(G_nv.synthesis.input.transform, G.synthesis.input.transform)
        img_nv = G_nv(z, c_nv, truncation_psi=0.7)
        out["translate_rotate"] = max_diff(img_nv, G(z, c, psi=0.7))
        out["translate_rotate_fused"] = max_diff(img_nv, G(z, c, psi=0.7, fused=True))
        out["update_emas"] = max_diff(G_nv(z, c_nv, update_emas=True), G(z, c, update_emas=True))
        ema = [
            max_diff(b_nv, b)
            for (k_nv, b_nv), (k, b) in zip(G_nv.named_buffers(), G.named_buffers())
            if k_nv.endswith(("magnitude_ema", "w_avg"))
        ]
        out["emas_after_update"] = max(ema)
    assert calls["ref"] > before, "NVIDIA's filtered_lrelu did not run its reference implementation"
    out["output_std"] = float(img_nv.std())
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="a checkout of NVlabs/stylegan3")
    parser.add_argument("--res", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    nets, gen_images, flrelu = import_reference(args.reference)
    calls = force_reference_impl(flrelu)
    worst = 0.0
    for cfg, c_dim, img_channels in [("t", 0, 3), ("t", 3, 1), ("r", 0, 3), ("r", 3, 1), ("t", 0, 4)]:
        res = run_case(nets, gen_images, calls, cfg, c_dim, img_channels, args.res)
        print(json.dumps(res), flush=True)
        worst = max(
            worst, *(v for k, v in res.items() if k not in ("cfg", "c_dim", "img_channels", "res", "output_std"))
        )
    print(json.dumps({"max_abs_diff_all_cases": worst}))


if __name__ == "__main__":
    main()
