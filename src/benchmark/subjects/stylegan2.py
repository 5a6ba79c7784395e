"""``benchmark.py stylegan2``: one full StyleGAN2 training iteration in a real Trainer.

Gmain + Dmain every iteration, path length (Greg) every 4 and R1 (Dreg) every 16, so the timed window
(``steps``, rounded up to a multiple of 16) amortizes the regularization exactly as training does;
``augment=`` times it with D's augmentation on. ``nvidia=PATH`` also times NVIDIA's StyleGAN2 from a
checkout of NVlabs/stylegan3 at the same architecture, in the same process
(:mod:`src.profiling.nvidia_reference`), and reports both and the speed-up.
"""

from __future__ import annotations

import math
import types
from typing import Any

from src.benchmark.harness import RandomImages, device_of, fit_timed, resolution_of
from src.benchmark.options import AUGMENT, BASE, STYLEGAN, TRAINING, Sizes, Subject
from src.benchmark.report import side_by_side, training_report
from src.datamodules.image_datamodule import ImageDataModule
from src.modules.base import GANModule
from src.modules.stylegan2.module import StyleGAN2
from src.profiling.measure import PhaseRecorder

__all__ = ["SUBJECT", "module_kwargs", "report_keys", "time_iterations"]


def module_kwargs(args: types.SimpleNamespace, res: tuple[int, int]) -> dict[str, Any]:
    """The StyleGAN2-type module's arguments (StyleGAN2, SEGAN) from the command line's keys."""
    return dict(
        img_channels=3,
        resolution=list(res),
        z_dim=args.z_dim,
        w_dim=args.z_dim,
        map_depth=args.map_depth,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        mbstd_group=min(4, args.batch),
        check_finite_every=0,
        perf=dict(compile=args.compile, channels_last=args.channels_last),
        augment=dict(mode=args.augment, p=args.augment_p, pipeline=args.augment_pipeline),
    )


def report_keys(args: types.SimpleNamespace) -> dict[str, Any]:
    """The architecture keys the report repeats (and the augmentation's, when on)."""
    extra = dict(channel_base=args.channel_base, channel_max=args.channel_max, map_depth=args.map_depth)
    if args.augment != "none":
        extra |= dict(augment=args.augment, augment_p=args.augment_p, augment_pipeline=args.augment_pipeline)
    return extra


def time_iterations(
    model: GANModule,
    recorder: PhaseRecorder,
    args: types.SimpleNamespace,
    res: tuple[int, int],
    extra: dict[str, Any],
    data: RandomImages | None = None,
) -> tuple[dict, RandomImages, int]:
    """Fit ``model`` with ``recorder`` attached on ``data`` (default: random images) and report the timed
    window (``steps`` rounded up to 16 iterations); returns the report, the data and the number of timed
    iterations."""
    steps = max(16, math.ceil(args.steps / 16) * 16)
    model.phase_recorder = recorder
    data = RandomImages(max(args.batch * 4, 64), 3, res) if data is None else data
    dm = ImageDataModule(data, batch_size=args.batch, resolution=list(res))
    timer, _ = fit_timed(model, dm, args, steps)
    return training_report(args.what, model, timer, args, res, **extra), data, steps


def run(args: types.SimpleNamespace) -> dict:
    res = resolution_of(args)
    model = StyleGAN2(**module_kwargs(args, res))
    recorder = PhaseRecorder(device_of(args))
    ours, data, steps = time_iterations(model, recorder, args, res, report_keys(args))
    if not args.nvidia:
        return ours
    from src.profiling import nvidia_reference

    flops = dict(recorder.flops)
    del model, recorder
    theirs = nvidia_reference.time_training(args.nvidia, data, args, device_of(args), steps, flops)
    return side_by_side(ours, theirs, "sec_per_iteration")


SUBJECT = Subject("stylegan2", run, BASE | TRAINING | STYLEGAN | AUGMENT | dict(nvidia=None), Sizes([32], 16, 16, 2))
