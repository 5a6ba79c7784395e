"""Side-by-side check of importing NVIDIA StyleGAN3 pickles (docs/parity.md, "StyleGAN3 pickle import").

With NVlabs/stylegan3 checked out outside this repository (``--reference``; nothing of it is copied here),
for each case (configs T and R, one of them conditional, small sizes for a CPU):

1. builds NVIDIA's ``training/networks_stylegan3.py:Generator`` and ``training/networks_stylegan2.py:
   Discriminator`` with the keywords ``train.py`` passes for ``--cfg=stylegan3-t|-r`` (R: 1x1 convolutions,
   radial filters, G's widths doubled against D's; ``magnitude_ema_beta = 0.5 ** (batch / 20000)``), random
   weights in every tensor (biases, the input's affine, ``w_avg`` and the magnitude EMAs, G_ema apart from
   G), and ``training/augment.py:AugmentPipe`` as ``--aug=ada`` builds it;
2. pickles them as ``training/training_loop.py`` saves a snapshot (``dict(G, D, G_ema, augment_pipe,
   training_set_kwargs)``, each network deep-copied, ``eval().requires_grad_(False)``, on the CPU,
   ``pickle.dump``) into a temporary folder (never the repository: the pickle embeds NVIDIA's source);
3. runs ``gen_images.py``'s logic on NVIDIA's side (``legacy.load_network_pkl(f)['G_ema']``, seeds 0-3,
   ``z = RandomState(seed).randn(1, z_dim)``, the class as a one-hot label, ``--trunc`` 1 and 0.7, the
   ``--translate``/``--rotate`` transform as ``inv(make_transform(...))`` copied into
   ``synthesis.input.transform``, ``noise_mode='const'``, ``(x * 127.5 + 128).clamp(0, 255)`` as uint8);
4. imports the pickle with gamut's tool (``src.tools.import_checkpoint``: restricted unpickler, nothing of
   the pickle runs) and generates with ``src.tools.generate`` (``seeds``, ``trunc``, ``class_idx``,
   ``translate``, ``rotate``), comparing the PNGs with NVIDIA's uint8 images, and the float images through
   the tools' loader (``load_inference``) with the transform buffer set by
   :func:`src.modules.stylegan3.networks.input_transform`; D on random images;
5. imports NVIDIA's network at a size that is not a power of two (48 px, which NVIDIA's code lays out
   differently from gamut) and prints the refusal.

NVIDIA's ``filtered_lrelu`` runs its reference implementation (the script checks it did), as on any CPU.

    python -m tests.parity.stylegan3_pickle --reference /path/to/stylegan3
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.parity.stylegan3_generator import force_reference_impl, import_reference, max_diff, randomise

CASES = [  # cfg, c_dim, resolution
    ("t", 0, 32),
    ("r", 4, 32),
]
SEEDS = (0, 1, 2, 3)
TRANSFORM = ((0.1, -0.05), 15.0)  # gen_images.py --translate=0.1,-0.05 --rotate=15
BATCH = 32  # for magnitude_ema_beta, as train.py derives it from --batch


def nvidia_networks(cfg: str, c_dim: int, res: int, seed: int) -> dict:
    """G, D, G_ema, augment_pipe and training_set_kwargs as training_loop.py holds them."""
    import training.augment as augment  # type: ignore[import-not-found]
    import training.networks_stylegan2 as nets2  # type: ignore[import-not-found]
    import training.networks_stylegan3 as nets3  # type: ignore[import-not-found]

    cbase, cmax = 2048, 128  # train.py --cbase/--cmax, shrunk 16x / 4x
    g_kwargs = dict(z_dim=64, w_dim=64, mapping_kwargs=dict(num_layers=2), channel_base=cbase, channel_max=cmax)
    g_kwargs["magnitude_ema_beta"] = 0.5 ** (BATCH / (20 * 1e3))
    if cfg == "r":
        g_kwargs.update(conv_kernel=1, channel_base=cbase * 2, channel_max=cmax * 2, use_radial_filters=True)
    common = dict(c_dim=c_dim, img_resolution=res, img_channels=3)
    torch.manual_seed(seed)
    G = nets3.Generator(**g_kwargs, **common).train().requires_grad_(False)
    D = nets2.Discriminator(
        channel_base=cbase,
        channel_max=cmax,
        block_kwargs={},
        mapping_kwargs={},
        epilogue_kwargs=dict(mbstd_group_size=4),
        **common,
    ).train()
    G_ema = copy.deepcopy(G).eval()
    randomise(G, seed + 1)
    randomise(G_ema, seed + 2)
    with torch.no_grad():
        for name, p in D.named_parameters():
            if name.endswith("bias"):
                p.add_(0.1 * torch.randn(p.shape))
    pipe = augment.AugmentPipe(
        xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1
    )
    pipe.p.copy_(torch.as_tensor(0.1))
    training_set_kwargs = dict(
        class_name="training.dataset.ImageFolderDataset",
        path="/data/set.zip",
        use_labels=c_dim > 0,
        max_size=1000,
        xflip=False,
        resolution=res,
        random_seed=0,
    )
    return dict(G=G, D=D, G_ema=G_ema, augment_pipe=pipe, training_set_kwargs=training_set_kwargs)


def write_snapshot(data: dict, path: Path) -> None:
    """training_loop.py's snapshot: deep copies in eval mode without grad, on the CPU, pickled as a dict."""
    snapshot = dict(data)
    for key, value in snapshot.items():
        if isinstance(value, torch.nn.Module):
            snapshot[key] = copy.deepcopy(value).eval().requires_grad_(False).cpu()
    with open(path, "wb") as f:
        pickle.dump(snapshot, f)


def nvidia_images(pkl: Path, class_idx: int | None, psi: float, transform: bool) -> tuple[torch.Tensor, list]:
    """gen_images.py's loop on the CPU: float images [N, C, H, W] and the uint8 HWC arrays it saves."""
    import gen_images  # type: ignore[import-not-found]
    import legacy  # type: ignore[import-not-found]

    with open(pkl, "rb") as f:
        G = legacy.load_network_pkl(f)["G_ema"]
    label = torch.zeros([1, G.c_dim])
    if G.c_dim != 0:
        label[:, class_idx] = 1
    floats, saved = [], []
    for seed in SEEDS:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
        if hasattr(G.synthesis, "input"):
            translate, rotate = TRANSFORM if transform else ((0.0, 0.0), 0.0)
            m = np.linalg.inv(gen_images.make_transform(translate, rotate))
            G.synthesis.input.transform.copy_(torch.from_numpy(m))
        with torch.no_grad():
            img = G(z, label, truncation_psi=psi, noise_mode="const")
        floats.append(img)
        saved.append((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy())
    return torch.cat(floats), saved


def gamut_images(ckpt: Path, out: Path, class_idx: int | None, psi: float, transform: bool):
    """gamut's generate tool (PNGs) and the tools' loader (float images), seeds as NVIDIA's."""
    from src.checkpoints.load import load_inference
    from src.latents.seeds import seed_latents
    from src.nn.input_transform import user_transform
    from src.tools import generate

    args = [f"ckpt={ckpt}", f"seeds={','.join(map(str, SEEDS))}", f"trunc={psi}", f"out={out}"]
    if class_idx is not None:
        args.append(f"class_idx={class_idx}")
    if transform:
        (tx, ty), angle = TRANSFORM
        args += [f"translate={tx},{ty}", f"rotate={angle}"]
    generate.main(args)
    pngs = [np.asarray(Image.open(out / f"seed{seed:04d}.png")) for seed in SEEDS]
    model = load_inference(ckpt)
    z, _ = seed_latents(list(SEEDS), model.G.z_dim)
    c = model.labels_for(len(SEEDS), class_idx)
    buffer = model.G.synthesis.input.transform
    if transform:
        buffer.copy_(user_transform(*TRANSFORM))
    floats = model.sample(z, c, psi=psi)
    buffer.copy_(torch.eye(3))
    return floats, pngs


def run_case(cfg: str, c_dim: int, res: int, tmp: Path) -> dict:
    from src.checkpoints.load import load_module
    from src.tools import import_checkpoint

    data = nvidia_networks(cfg, c_dim, res, seed=len(cfg) + c_dim)
    pkl = tmp / f"stylegan3-{cfg}-{res}-c{c_dim}.pkl"
    write_snapshot(data, pkl)
    ckpt = tmp / f"{cfg}{res}c{c_dim}.ckpt"
    import_checkpoint.main([f"src={pkl}", f"out={ckpt}"])
    class_idx = 1 if c_dim else None
    out: dict = dict(cfg=cfg, c_dim=c_dim, res=res)
    scale = []
    for psi in (1.0, 0.7):
        for transform in (False, True):
            key = f"psi{psi:g}" + ("_translate_rotate" if transform else "")
            ref, ref_png = nvidia_images(pkl, class_idx, psi, transform)
            ours, png = gamut_images(ckpt, tmp / f"png-{cfg}{c_dim}-{key}", class_idx, psi, transform)
            out[key] = max_diff(ref, ours)
            levels = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(ref_png, png)]
            out[key + "_png"] = (
                f"{sum(int((lv > 0).sum()) for lv in levels)} px differ (max {max(lv.max() for lv in levels)})"
            )
            scale.append(float(ref.abs().mean()))
    out["pixels_per_setting"] = len(SEEDS) * res * res * 3
    out["output_mean_abs"] = round(min(scale), 3), round(max(scale), 3)
    model = load_module(ckpt)
    torch.manual_seed(7)
    x = torch.randn(4, 3, res, res)
    c = torch.eye(c_dim)[torch.arange(4) % c_dim] if c_dim else None
    with torch.no_grad():
        out["D"] = max_diff(data["D"].eval()(x, c if c is not None else torch.zeros(4, 0)), model.D(x, c))
    return out


def refused_48(tmp: Path) -> str:
    from src.checkpoints.importing import build_module
    from src.pretrained import UnsupportedNetworkError, read

    data = nvidia_networks("t", 0, 48, seed=3)
    pkl = tmp / "stylegan3-t-48.pkl"
    write_snapshot(data, pkl)
    try:
        build_module(read(pkl))
    except UnsupportedNetworkError as e:
        return str(e)
    raise AssertionError("NVIDIA's 48 px network was imported; gamut lays out 48 px differently")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="a checkout of NVlabs/stylegan3")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    _, _, flrelu = import_reference(args.reference)
    calls = force_reference_impl(flrelu)
    with tempfile.TemporaryDirectory(prefix="gamut-sg3-pickles-") as d:
        tmp = Path(d)
        for cfg, c_dim, res in CASES:
            print(json.dumps(run_case(cfg, c_dim, res, tmp)), flush=True)
        assert calls["ref"] > 0, "NVIDIA's filtered_lrelu did not run its reference implementation"
        print(json.dumps({"nvidia_48px": refused_48(tmp)}), flush=True)


if __name__ == "__main__":
    main()
