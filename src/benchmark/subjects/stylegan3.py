"""``benchmark.py stylegan3 cfg=t|r``: one full StyleGAN3 training iteration in a real Trainer, and ``G(z)``.

The module is :class:`~src.modules.stylegan3.module.StyleGAN3` with NVIDIA's ``train.py`` values for
``--cfg=stylegan3-t`` / ``stylegan3-r`` (src/conf/preset/stylegan3-t.yaml, stylegan3-r.yaml): a 2-layer mapping
(``map_depth``), ``channel_base`` 32768 and ``channel_max`` 512 for D and config T's G, config R's G at
twice both (the ratio of :data:`~src.modules.stylegan3.networks.STYLEGAN3_CONFIGS`), 3x3 (T) or 1x1 with
radial filters (R); no path length and no style mixing; R1 every 16 (gamma
:data:`~src.profiling.nvidia_stylegan3.R1_GAMMA`); G lr 0.0025, D lr 0.002; the magnitude EMA decay
``0.5 ** (batch / 20000)``; for R the blur of D's images, sigma 10 over ``batch * 200 / 32`` kimg; G_ema
over ``batch * 10 / 32`` kimg. The phases are StyleGAN2's without Greg (Gmain, Dmain, Dreg every 16), timed
as :mod:`src.benchmark.subjects.stylegan2` times them (``steps`` rounded up to 16, FLOPs counted on
iteration 0, the fraction of the device's peak). After the fit, ``G_ema(z)`` (constant noise mode, psi 1,
no grad) is timed over ``infer_steps`` batches of ``batch`` (0: not timed) and reported under
``inference``.

``nvidia=PATH`` also times NVIDIA's StyleGAN3 of the same config and architecture from a checkout of
NVlabs/stylegan3 (:mod:`src.profiling.nvidia_stylegan3`), training and ``G(z)``, in the same process,
and reports both and the speed-ups. NVIDIA's networks take square sizes only.

The same command is a short side-by-side training: ``data=shapes`` trains both codes on the same
``images`` images of ``data=shapes_easy`` (default: random images, which only time), ``gamma`` is R1's
gamma for both, and ``quality=N`` measures each G_ema after its run by the sliced Wasserstein distance
(:mod:`src.metrics.swd`, no feature network) between N generated images (the same latents on both
sides, psi 1) and the first N training images. Each report's ``losses`` holds the mean ``Loss/G``,
``Loss/D`` and ``Loss/r1`` over four equal spans of the run (NVIDIA's ``Loss/G/loss``, ``Loss/D/loss``
and ``Loss/D/reg``: the same quantities).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from src.benchmark.harness import RandomImages, device_of, resolution_of, shapes_images
from src.benchmark.options import AUGMENT, BASE, STYLEGAN, TRAINING, Sizes, Subject
from src.benchmark.report import side_by_side
from src.benchmark.subjects import stylegan2
from src.benchmark.subjects.inference import time_generator
from src.metrics.swd import swd
from src.modules.stylegan3 import losses
from src.modules.stylegan3.module import StyleGAN3
from src.modules.stylegan3.networks import STYLEGAN3_CONFIGS
from src.profiling.measure import LossHistory, PhaseRecorder
from src.profiling.nvidia_stylegan3 import R1_GAMMA

__all__ = ["SUBJECT", "module_kwargs"]


def g_widths(args: types.SimpleNamespace) -> tuple[int, int]:
    """G's channel base and max: the given ones (D's, config T's G), times R's factor for config R."""
    scale = STYLEGAN3_CONFIGS[args.cfg]["channel_base"] // STYLEGAN3_CONFIGS["t"]["channel_base"]
    return args.channel_base * scale, args.channel_max * scale


def module_kwargs(args: types.SimpleNamespace, res: tuple[int, int]) -> dict[str, Any]:
    """StyleGAN3's arguments for ``cfg`` from the command line's keys, as the presets set them."""
    arch = STYLEGAN3_CONFIGS[args.cfg]
    g_base, g_max = g_widths(args)
    blur = dict(sigma=10.0, fade_kimg=args.batch * 200 / 32) if args.cfg == "r" else None
    return stylegan2.module_kwargs(args, res) | dict(
        conv_kernel=arch["conv_kernel"],
        use_radial_filters=arch["use_radial_filters"],
        g_channel_base=g_base,
        g_channel_max=g_max,
        magnitude_ema_beta=None,  # NVIDIA's rule for the batch: 0.5 ** (batch / 20000)
        blur=blur,
        loss=dict(r1_gamma=float(args.gamma), pl_weight=0.0, style_mixing_prob=0.0),
        optim=dict(g_lr=0.0025, d_lr=0.002),
        ema=dict(kimg=args.batch * 10 / 32, rampup=0.05),
    )


def report_keys(args: types.SimpleNamespace) -> dict[str, Any]:
    """What the report repeats of the configuration."""
    arch = STYLEGAN3_CONFIGS[args.cfg]
    g_base, g_max = g_widths(args)
    return (
        dict(cfg=args.cfg)
        | stylegan2.report_keys(args)
        | dict(
            g_channel_base=g_base,
            g_channel_max=g_max,
            conv_kernel=arch["conv_kernel"],
            use_radial_filters=arch["use_radial_filters"],
            magnitude_ema_beta=losses.magnitude_ema_beta(args.batch),
            blur_sigma=10.0 if args.cfg == "r" else 0.0,
            r1_gamma=float(args.gamma),
            data=args.data,
        )
    )


def inference_args(args: types.SimpleNamespace) -> types.SimpleNamespace:
    """``args`` with ``steps`` = ``infer_steps``: what :func:`time_generator` reads."""
    return types.SimpleNamespace(**(vars(args) | dict(steps=args.infer_steps)))


def time_g_ema(model: StyleGAN3, args: types.SimpleNamespace, res: tuple[int, int]) -> dict:
    """``model.G_ema(z)`` timed by :func:`time_generator` (constant noise mode, psi 1, no grad)."""
    G = model.G_ema.eval().requires_grad_(False).to(device_of(args))
    out = time_generator(G, args, res, f"gamut stylegan3-{args.cfg}", lambda z: G(z, noise_mode="const"))
    g_base, g_max = g_widths(args)
    return out | dict(g_channel_base=g_base, g_channel_max=g_max)


def check(args: types.SimpleNamespace) -> None:
    """NVIDIA's side needs a square size; say so before gamut's run, not after it."""
    if args.nvidia and len(args.resolution) == 2 and args.resolution[0] != args.resolution[1]:
        raise SystemExit(f"benchmark.py stylegan3: nvidia= needs a square resolution, got {args.resolution}")
    if args.quality < 0 or args.images < 0 or (args.images and args.images < max(args.quality, 1)):
        raise SystemExit(
            f"benchmark.py stylegan3: quality={args.quality} images={args.images}: quality counts training "
            "images, so it needs 0 <= quality <= images"
        )


def training_data(args: types.SimpleNamespace, res: tuple[int, int]) -> RandomImages:
    """``images`` random images (0: ``max(4 * batch, 64)``) or the first ``images`` of the easy
    shapes (0: ``max(quality, 2048)``), in memory."""
    if args.data == "shapes":
        return shapes_images(args.images or max(args.quality, 2048), res)
    return RandomImages(args.images or max(args.batch * 4, 64, args.quality), 3, res)


def swd_of(reals: Tensor, args: types.SimpleNamespace) -> Callable[[Callable[[Tensor], Tensor]], dict]:
    """``measure(G)``: SWD x 1e3 between ``G``'s images of ``quality`` seeded latents (float ``[-1, 1]``,
    quantised to uint8 as NVIDIA saves images) and the first ``quality`` of ``reals``."""
    n, device = args.quality, device_of(args)

    def measure(G: Callable[[Tensor], Tensor]) -> dict:
        z = torch.randn(n, args.z_dim, generator=torch.Generator().manual_seed(0))

        def fakes():
            with torch.no_grad():
                for part in z.split(args.batch):
                    x = G(part.to(device)).float()
                    yield (x * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()

        values = swd(reals[:n].split(args.batch), fakes())
        return {k: round(v, 3) for k, v in values.items()} | dict(metric="swd", images=n)

    return measure


def recording_losses(model: StyleGAN3, history: LossHistory) -> None:
    """Record each iteration's ``Loss/*`` values as the module logs them."""
    log_iteration = model.log_iteration

    def recorded(log: Mapping[str, Tensor | float]) -> None:
        history.start()
        for key, value in log.items():
            if key in ("Loss/G", "Loss/D", "Loss/r1"):
                history.add(key, value)
        log_iteration(log)

    model.log_iteration = recorded  # type: ignore[method-assign]  # observes, then calls the module's own


def run(args: types.SimpleNamespace) -> dict:
    res = resolution_of(args)
    device = device_of(args)
    model = StyleGAN3(**module_kwargs(args, res))
    recorder = PhaseRecorder(device)
    history = LossHistory()
    recording_losses(model, history)
    data = training_data(args, res)
    ours, data, steps = stylegan2.time_iterations(model, recorder, args, res, report_keys(args), data)
    ours["losses"] = history.summary()
    quality = swd_of(data.images, args) if args.quality else None
    if quality is not None:
        G = model.G_ema.eval().to(device)
        ours["quality"] = quality(lambda z: G(z, noise_mode="const"))
    infer = inference_args(args)
    if args.infer_steps:
        ours["inference"] = time_g_ema(model, infer, res)
    if not args.nvidia:
        return ours
    from src.profiling import nvidia_stylegan3

    flops = dict(recorder.flops)
    del model, recorder
    theirs = nvidia_stylegan3.time_training(args.nvidia, args.cfg, data, args, device, steps, flops, quality)
    if args.infer_steps:
        model_flops = ours["inference"]["flops_per_batch"]
        theirs["inference"] = nvidia_stylegan3.time_inference(
            args.nvidia, args.cfg, infer, device, res, time_generator, model_flops
        )
    out = side_by_side(ours, theirs, "sec_per_iteration")
    if args.infer_steps:
        out["inference_speedup"] = round(theirs["inference"]["sec_per_batch"] / ours["inference"]["sec_per_batch"], 3)
    return out


KEYS = (
    BASE
    | TRAINING
    | STYLEGAN
    | AUGMENT
    | dict(channel_base=32768, map_depth=2, cfg="t", infer_steps=3, nvidia=None)
    | dict(data="random", images=0, quality=0, gamma=R1_GAMMA)
)
SUBJECT = Subject("stylegan3", run, KEYS, Sizes([32], 16, 16, 2), check)
