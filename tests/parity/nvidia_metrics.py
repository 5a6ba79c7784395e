"""Side-by-side check of gamut's metrics against NVIDIA's code (docs/parity.md, "Metrics").

Runs stylegan2-ada-pytorch's ``metrics/`` functions (from a checkout given with ``--reference``,
outside this repository; nothing of it is copied here) and gamut's :class:`MetricSuite` on the same
small StyleGAN2 generator, the same folder of PNG images and the same feature-network weights:

- Inception: torch-fidelity's architecture with random weights, saved in gamut's weights folder;
  NVIDIA's metrics get the same network through their detector interface
  (``return_features=True``: pool3; ``no_output_bias=True``: the class probabilities).
- VGG-16: a random TorchScript archive with the interface of NVIDIA's ``vgg16.pt``
  (tests/nvidia_standins.py), loaded by both from the same file.
- Generated images: NVIDIA's loop draws its own z; here its generator replays gamut's images for the
  metric's seed in order, so both score the same images (noise mode ``const``). PPL draws its pairs
  inside NVIDIA's sampler, so it is compared twice: per pair on the same latents (exact), and as the
  whole metric on independent draws (within sampling error, gamut's spread over seeds shown).
- KID: NVIDIA draws its subsets from numpy's global state; it is seeded with gamut's seed right
  before the draws, which is what gamut's draws reproduce.

Each NVIDIA metric runs as its ``metric_main.py`` function does (the same ``dataset_kwargs`` updates
and arguments) with the counts shrunk to the data at hand; the data set is mirrored
(``xflip=True``), so the ``*_full`` metrics' forced ``xflip=False`` is exercised.

    python -m tests.parity.nvidia_metrics --reference /path/to/stylegan2-ada-pytorch
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def write_images(folder: Path, count: int, size: int, seed: int) -> None:
    """``count`` smooth random RGB PNGs (upsampled 4x4 noise plus fine noise), so features vary."""
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        coarse = torch.rand(1, 3, 4, 4, generator=g)
        img = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        img = (img + 0.15 * torch.rand(1, 3, size, size, generator=g)).clamp(0, 1)
        arr = (img[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i:04d}.png")


def write_weights(folder: Path) -> None:
    """Random-init Inception (torch-fidelity's layout) and the vgg16.pt stand-in, under upstream names."""
    from src.pretrained.weights import WEIGHTS
    from tests.nvidia_standins import save_nvidia_vgg16, save_random_inception

    folder.mkdir(parents=True)
    save_random_inception(folder / WEIGHTS["inception"].filename, varied=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        save_nvidia_vgg16(folder / WEIGHTS["vgg16_nvidia"].filename)


def build_module(resolution: int):
    """A random StyleGAN2 module of the quickstart family at ``resolution`` (gamut's own configs)."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    import src.utils.resolvers  # noqa: F401  (the gamut.* resolvers the configs use)

    overrides = [
        "experiment=quickstart",
        f"data.resolution={resolution}",
        "model.z_dim=32",
        "model.w_dim=32",
        "model.map_depth=2",
        "model.channel_base=256",
        "model.channel_max=32",
        "model.num_classes=0",  # unconditional: NVIDIA's loop then draws empty labels
    ]
    with initialize_config_dir(config_dir=str(ROOT / "src" / "conf"), version_base="1.3"):
        cfg = compose(config_name="train.yaml", overrides=overrides)
    torch.manual_seed(1)
    module = instantiate(cfg.model, _convert_="partial")
    return module.eval().requires_grad_(False)


class InceptionDetector(torch.nn.Module):
    """gamut's Inception behind the call interface of NVIDIA's ``inception-2015-12-05.pt``."""

    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, images, return_features: bool = False, no_output_bias: bool = False):
        if return_features:
            return self.net(images)
        if no_output_bias:
            return self.net(images, probs=True)[:, 2048:]
        raise ValueError("the parity run asks for features or unbiased probabilities only")


class ReplayGenerator(torch.nn.Module):
    """Returns gamut's generated images in order (on NVIDIA's [-1, 1] scale, so NVIDIA's
    ``(x * 127.5 + 128)`` quantization gives back the same bytes), whatever z it is given."""

    def __init__(self, images: torch.Tensor, z_dim: int, resolution: int) -> None:
        super().__init__()
        self.images = images
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = z_dim, 0, resolution, 3
        self.position = 0

    def forward(self, z, c, **kwargs):
        index = torch.arange(self.position, self.position + z.shape[0]) % self.images.shape[0]
        self.position += z.shape[0]
        return (self.images[index].float() - 127.5) / 127.5


class MappedGenerator(torch.nn.Module):
    """gamut's G_ema with the mapping/synthesis interface NVIDIA's PPL sampler calls. The network is
    held outside the module tree, so the sampler's noise randomization finds no buffers and both
    sides use the constant noise."""

    def __init__(self, G, resolution: int) -> None:
        super().__init__()
        self.held = [G]
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = G.z_dim, 0, resolution, 3

    def mapping(self, z, c, **kwargs):
        return self.held[0].mapping(z, None)

    def synthesis(self, ws, noise_mode="const", force_fp32=True, **kwargs):
        return self.held[0].synthesis(ws, noise_mode="const")


def gamut_images(module, num: int, batch: int, seed: int) -> torch.Tensor:
    from src.metrics.generated import generated_images

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.cat([images for _, images in generated_images(module, num, batch, seed, "const")])


def run(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(Path(args.reference).resolve()))
    import dnnlib

    from metrics import (
        frechet_inception_distance,
        inception_score,
        kernel_inception_distance,
        metric_utils,
        perceptual_path_length,
        precision_recall,
    )
    from src.datamodules.readers.datasets import ImageFolderDataset
    from src.metrics.inception import load_inception
    from src.metrics.ppl import path_distances, ppl_rgb
    from src.metrics.suite import MetricSuite
    from src.metrics.vgg16_nvidia import NvidiaLPIPS, load_nvidia_vgg16

    work = Path(tempfile.mkdtemp(prefix="gamut-metric-parity-"))
    data, weights = work / "images", work / "weights"
    write_images(data, args.num_real, args.resolution, seed=2)
    write_weights(weights)
    module = build_module(args.resolution)
    n, seed = args.num_gen, 0

    # ---- gamut ---------------------------------------------------------------------------------
    names = [f"fid{n}_full", f"kid{n}_full", f"pr{n}3_full", f"is{n}", f"fid{n}", f"kid{n}", "ppl_wend"]
    suite = MetricSuite(
        names,
        weights,
        None,
        batch_size=args.batch,
        seed=seed,
        noise_mode="const",
        ppl={"num_samples": args.ppl_samples, "epsilons": [1e-4], "crop": False, "batch_size": 16},
    )
    dataset = ImageFolderDataset(data, resolution=args.resolution)
    start = time.perf_counter()
    ours = suite.run(module, dataset, mirror=True)
    gamut_s = time.perf_counter() - start
    spread = []
    for extra_seed in (1, 2):
        other = MetricSuite(
            ["ppl_wend"],
            weights,
            None,
            seed=extra_seed,
            noise_mode="const",
            ppl={"num_samples": args.ppl_samples, "epsilons": [1e-4], "crop": False, "batch_size": 16},
        )
        spread.append(other.run(module)["ppl_wend"]["values"]["ppl_wend"])

    # ---- NVIDIA ------------------------------------------------------------------------------------
    # On the CPU: NVIDIA's loop pins label tensors (a CUDA call), and float16 cdist is a GPU kernel;
    # here pinning is a no-op and a float16 cdist runs in float32, rounded to float16. NVIDIA's PPL
    # passes numpy's old keyword "interpolation", which numpy 2 calls "method".
    torch.Tensor.pin_memory = lambda self, *a, **k: self  # type: ignore[method-assign]
    cdist = torch.cdist

    def cdist_half(x1, x2, *a, **k):
        if x1.dtype == torch.float16:
            return cdist(x1.float(), x2.float(), *a, **k).half()
        return cdist(x1, x2, *a, **k)

    torch.cdist = cdist_half
    percentile = np.percentile  # numpy 2 renamed percentile's "interpolation" to "method"

    def percentile_old_keyword(a, q, *args, interpolation=None, **kwargs):
        return percentile(a, q, *args, method=interpolation or "linear", **kwargs)

    np.percentile = percentile_old_keyword
    inception = InceptionDetector(load_inception(weights))
    vgg16, _ = load_nvidia_vgg16(weights)
    detectors = {"inception-2015-12-05.pt": inception, "vgg16.pt": vgg16}
    metric_utils.get_feature_detector = lambda url, **kwargs: detectors[url.split("/")[-1]]
    make_stats = metric_utils.compute_feature_stats_for_generator

    def stats_then_seed(*a, **k):  # KID's subset draws start from numpy's state seeded as gamut's
        stats = make_stats(*a, **k)
        np.random.seed(seed)
        return stats

    metric_utils.compute_feature_stats_for_generator = stats_then_seed
    replay = ReplayGenerator(gamut_images(module, n, args.batch, seed), module.G_ema.z_dim, args.resolution)
    base = dnnlib.EasyDict(
        class_name="training.dataset.ImageFolderDataset", path=str(data), use_labels=False, xflip=True, max_size=None
    )

    def opts(G, **update) -> metric_utils.MetricOptions:
        kwargs = copy.deepcopy(base)
        kwargs.update(update)
        return metric_utils.MetricOptions(G=G, dataset_kwargs=kwargs, device=torch.device("cpu"), cache=False)

    start = time.perf_counter()
    theirs = {
        # metric_main.py: fid50k_full / kid50k_full / pr50k3_full / is50k update xflip=False
        f"fid{n}_full": frechet_inception_distance.compute_fid(opts(replay, xflip=False), max_real=None, num_gen=n),
        f"kid{n}_full": kernel_inception_distance.compute_kid(
            opts(replay, xflip=False), max_real=1000000, num_gen=n, num_subsets=100, max_subset_size=1000
        ),
        f"pr{n}3_full": precision_recall.compute_pr(
            opts(replay, xflip=False),
            max_real=200000,
            num_gen=n,
            nhood_size=3,
            row_batch_size=10000,
            col_batch_size=10000,
        ),
        f"is{n}": inception_score.compute_is(opts(replay, xflip=False), num_gen=n, num_splits=10),
        # the legacy names keep the data's xflip and cap the reals at the count
        f"fid{n}": frechet_inception_distance.compute_fid(opts(replay), max_real=n, num_gen=n),
        f"kid{n}": kernel_inception_distance.compute_kid(
            opts(replay), max_real=n, num_gen=n, num_subsets=100, max_subset_size=1000
        ),
    }
    torch.manual_seed(seed)
    mapped = MappedGenerator(module.G_ema, args.resolution)
    theirs["ppl_wend"] = perceptual_path_length.compute_ppl(
        opts(mapped), num_samples=args.ppl_samples, epsilon=1e-4, space="w", sampling="end", crop=False, batch_size=16
    )
    nvidia_s = time.perf_counter() - start

    # ---- PPL per pair on the same latents ---------------------------------------------------------
    sampler = perceptual_path_length.PPLSampler(
        G=mapped, G_kwargs={}, epsilon=1e-4, space="w", sampling="end", crop=False, vgg16=vgg16
    )
    torch.manual_seed(7)
    their_pairs = sampler(torch.zeros(64, 0))
    torch.manual_seed(7)  # the same draws the sampler made: t (zeroed for "end"), then z0 and z1
    t = torch.rand(64) * 0
    z0, z1 = torch.randn(128, module.G_ema.z_dim).chunk(2)
    our_pairs = path_distances(
        module.G_ema,
        NvidiaLPIPS(weights),
        lambda x: ppl_rgb(x, module.colorspace),
        z0,
        z1,
        None,
        t,
        [1e-4],
        "w",
        noise_mode="const",
    )[:, 0]
    outside = float(
        (module.G_ema.synthesis(module.G_ema.mapping(z0, None), noise_mode="const").abs() > 1).float().mean()
    )

    # ---- table -------------------------------------------------------------------------------------
    rows = []

    def add(key: str, mine: float, reference: float) -> None:
        rows.append({"key": key, "gamut": mine, "nvidia": reference, "abs_diff": abs(mine - reference)})

    flat = {k: v for r in ours.values() for k, v in r["values"].items()}
    for name in (f"fid{n}_full", f"fid{n}", f"is{n}"):
        if name.startswith("is"):
            add(f"{name}_mean", flat[f"{name}_mean"], theirs[name][0])
            add(f"{name}_std", flat[f"{name}_std"], theirs[name][1])
        else:
            add(name, flat[name], theirs[name])
    add(f"kid{n}_full", flat[f"kid{n}_full"], theirs[f"kid{n}_full"])
    add(f"kid{n}", flat[f"kid{n}"], theirs[f"kid{n}"])
    add(f"pr{n}3_full_precision", flat[f"pr{n}3_full_precision"], theirs[f"pr{n}3_full"][0])
    add(f"pr{n}3_full_recall", flat[f"pr{n}3_full_recall"], theirs[f"pr{n}3_full"][1])
    pair_diff = float((our_pairs.double() - their_pairs.double()).abs().max())
    pair_rel = float(((our_pairs.double() - their_pairs.double()).abs() / their_pairs.double().abs()).max())
    pair_scale = float(their_pairs.abs().max())
    result = {
        "rows": rows,
        "reals": {name: ours[name]["protocol"].get("num_real") for name in ours},
        "ppl_wend": {"gamut": flat["ppl_wend"], "nvidia": theirs["ppl_wend"], "gamut_other_seeds": spread},
        "ppl_pairs": {"max_abs_diff": pair_diff, "max_rel_diff": pair_rel, "max_value": pair_scale, "pairs": 64},
        "generator_outputs_outside_[-1,1]": outside,
        "seconds": {"gamut": round(gamut_s, 1), "nvidia": round(nvidia_s, 1)},
        "settings": vars(args),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--num-gen", type=int, default=200, help="generated images per metric")
    parser.add_argument("--num-real", type=int, default=64, help="PNG images in the (mirrored) data set")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--ppl-samples", type=int, default=2000)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("GAMUT_OFFLINE", "1")  # every file is written locally
    result = run(args)
    print(f"{'key':<24} {'gamut':>14} {'NVIDIA':>14} {'|diff|':>10}")
    for r in result["rows"]:
        print(f"{r['key']:<24} {r['gamut']:>14.8g} {r['nvidia']:>14.8g} {r['abs_diff']:>10.2e}")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
