"""``benchmark.py chromagan``: one ChromaGAN iteration in a real Trainer, in the official order: the
VGG-16 teacher (when ``weights_dir`` holds ``vgg16-397923af.pth``), the G step, the critic step with the
gradient penalty, at ``resolution`` (default 224) and ``width`` (conv channel multiplier, 1.0 = the paper)."""

from __future__ import annotations

import types

from src.benchmark.harness import RandomImages, device_of, fit_timed
from src.benchmark.options import BASE, TRAINING, Sizes, Subject
from src.benchmark.report import training_report
from src.datamodules.image_datamodule import ImageDataModule
from src.modules.chromagan.module import ChromaGAN
from src.profiling.measure import PhaseRecorder

__all__ = ["SUBJECT"]


def run(args: types.SimpleNamespace) -> dict:
    res = tuple(args.resolution) if len(args.resolution) == 2 else (args.resolution[0],) * 2
    teacher = args.weights_dir is not None
    model = ChromaGAN(
        resolution=list(res),
        width=args.width,
        trunk_pretrained=False,
        weights_dir=args.weights_dir,
        critic={"width": args.width},
        loss=None if teacher else {"lambda_kl": 0.0},
        check_finite_every=0,
        perf=dict(compile=args.compile, channels_last=args.channels_last),
    )
    model.phase_recorder = PhaseRecorder(device_of(args))
    dm = ImageDataModule(
        RandomImages(max(args.batch * 4, 40), 3, res), colorspace="lab", batch_size=args.batch, resolution=list(res)
    )
    timer, _ = fit_timed(model, dm, args, args.steps)
    return training_report("chromagan", model, timer, args, res, width=args.width, teacher=teacher)


SUBJECT = Subject("chromagan", run, BASE | TRAINING | dict(width=1.0, weights_dir=None), Sizes([224], 10, 4, 1))
