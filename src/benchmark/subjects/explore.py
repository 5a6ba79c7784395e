"""``benchmark.py explore``: the latent explorer's latency per live control.

For the ψ slider (mapping cached), a new seed, the interpolation slider and a SEGAN value slider in
``mode``: the median seconds from the change to the PNG the page receives (the server function of
:class:`src.explorer.views.Explorer` and the PNG encoding Gradio does), batch 1, channels-last, over a
random StyleGAN2 and SEGAN generator of the given size; ``images`` latents behind SEGAN's σ units,
timed once as ``segan_stats_sec``.
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from src.benchmark.harness import device_of, resolution_of
from src.benchmark.options import BASE, STYLEGAN, Sizes, Subject
from src.colorspaces import get_colorspace
from src.modules.stylegan2.generator import Generator
from src.profiling.measure import synchronize

__all__ = ["SUBJECT"]


def run(args: types.SimpleNamespace) -> dict:
    from PIL import Image

    from src.checkpoints.load import InferenceModel
    from src.explorer.views import Explorer
    from src.modules.segan.generator import SEGANGenerator

    res = resolution_of(args)
    device = device_of(args)
    arch = dict(z_dim=args.z_dim, w_dim=args.z_dim, resolution=res, img_channels=3, map_depth=args.map_depth,
                channel_base=args.channel_base, channel_max=args.channel_max)  # fmt: skip
    out = {"what": "explore", "device": str(device), "resolution": list(res), "channel_base": args.channel_base,
           "map_depth": args.map_depth, "timed_changes": args.steps, "torch": torch.__version__}  # fmt: skip
    with tempfile.TemporaryDirectory() as ws:
        views = {}
        for name, cls in (("stylegan2", Generator), ("segan", SEGANGenerator)):
            g = (cls(**arch, mode=args.mode) if cls is SEGANGenerator else cls(**arch)).eval().requires_grad_(False)
            g = g.to(device).to(memory_format=torch.channels_last)
            views[name] = Explorer(InferenceModel(g, get_colorspace("rgb"), Path(name)), ws, stats_n=args.images)
        ex, seg = views["stylegan2"], views["segan"]
        t0 = time.perf_counter()
        seg.coord_stats()  # once per model and class, before the first SEGAN slider move
        out["segan_stats_sec"] = round(time.perf_counter() - t0, 3)
        controls: dict[str, Callable[[int], np.ndarray]] = {  # control -> the call one change makes (k: its index)
            "psi_slider": lambda k: ex.seed_grid("0", 0.5 + 0.05 * (k % 10)),
            "seed_change": lambda k: ex.seed_grid(str(1000 + k)),
            "interpolation_slider": lambda k: ex.interpolation_frame(0, 1, (k % 10) / 10),
            "segan_value_slider": lambda k: seg.segan_edit(0, 1, 0, 0, -2.0 + 0.4 * (k % 10)),
        }
        for name, call in controls.items():

            def change(k: int) -> int:
                buf = io.BytesIO()
                Image.fromarray(call(k)).save(buf, format="PNG")  # what Gradio sends the page
                return buf.tell()

            for k in range(args.warmup):
                change(-1 - k)
            times = []
            for k in range(args.steps):
                synchronize(device)
                t0 = time.perf_counter()
                change(k)
                synchronize(device)
                times.append(time.perf_counter() - t0)
            out[f"{name}_sec"] = round(statistics.median(times), 4)
            out[f"{name}_sec_max"] = round(max(times), 4)
    return out


SUBJECT = Subject("explore", run, BASE | STYLEGAN | dict(steps=None, mode=2, images=10000), Sizes([256], 1, 10, 2))
