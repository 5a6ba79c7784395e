"""``benchmark.py stylegan3 cfg=t|r``: one full StyleGAN3 training iteration in a real Trainer, and ``G(z)``.

The module is :class:`~src.modules.stylegan3.module.StyleGAN3` with NVIDIA's ``train.py`` values for
``--cfg=stylegan3-t`` / ``stylegan3-r`` (conf/preset/stylegan3-t.yaml, stylegan3-r.yaml): a 2-layer mapping
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
"""

from __future__ import annotations

import types
from typing import Any

from src.benchmark.harness import device_of, resolution_of
from src.benchmark.options import AUGMENT, BASE, STYLEGAN, TRAINING, Sizes, Subject
from src.benchmark.report import side_by_side
from src.benchmark.subjects import stylegan2
from src.benchmark.subjects.inference import time_generator
from src.modules.stylegan3 import losses
from src.modules.stylegan3.module import StyleGAN3
from src.modules.stylegan3.networks import STYLEGAN3_CONFIGS
from src.profiling.measure import PhaseRecorder
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
        loss=dict(r1_gamma=R1_GAMMA, pl_weight=0.0, style_mixing_prob=0.0),
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


def run(args: types.SimpleNamespace) -> dict:
    res = resolution_of(args)
    device = device_of(args)
    model = StyleGAN3(**module_kwargs(args, res))
    recorder = PhaseRecorder(device)
    ours, data, steps = stylegan2.time_iterations(model, recorder, args, res, report_keys(args))
    infer = inference_args(args)
    if args.infer_steps:
        ours["inference"] = time_g_ema(model, infer, res)
    if not args.nvidia:
        return ours
    from src.profiling import nvidia_stylegan3

    flops = dict(recorder.flops)
    del model, recorder
    theirs = nvidia_stylegan3.time_training(args.nvidia, args.cfg, data, args, device, steps, flops)
    out = side_by_side(ours, theirs, "sec_per_iteration")
    if args.infer_steps:
        model_flops = ours["inference"]["flops_per_batch"]
        theirs["inference"] = nvidia_stylegan3.time_inference(
            args.nvidia, args.cfg, infer, device, res, time_generator, model_flops
        )
        out["inference_speedup"] = round(theirs["inference"]["sec_per_batch"] / ours["inference"]["sec_per_batch"], 3)
    return out


KEYS = BASE | TRAINING | STYLEGAN | AUGMENT | dict(channel_base=32768, map_depth=2, cfg="t", infer_steps=3, nvidia=None)
SUBJECT = Subject("stylegan3", run, KEYS, Sizes([32], 16, 16, 2), check)
