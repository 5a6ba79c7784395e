"""``benchmark.py segan``: one full SEGAN training iteration in ``mode`` 0-3, timed as StyleGAN2's
(:mod:`src.benchmark.subjects.stylegan2`: the same architecture keys, phases and timed window)."""

from __future__ import annotations

import types

from src.benchmark.harness import device_of, resolution_of
from src.benchmark.options import AUGMENT, BASE, STYLEGAN, TRAINING, Sizes, Subject
from src.benchmark.subjects.stylegan2 import module_kwargs, report_keys, time_iterations
from src.modules.segan.module import SEGAN
from src.profiling.measure import PhaseRecorder

__all__ = ["SUBJECT"]


def run(args: types.SimpleNamespace) -> dict:
    res = resolution_of(args)
    model = SEGAN(mode=args.mode, **module_kwargs(args, res))
    recorder = PhaseRecorder(device_of(args))
    report, _, _ = time_iterations(model, recorder, args, res, report_keys(args) | dict(mode=args.mode))
    return report


SUBJECT = Subject("segan", run, BASE | TRAINING | STYLEGAN | AUGMENT | dict(mode=2), Sizes([32], 16, 16, 2))
