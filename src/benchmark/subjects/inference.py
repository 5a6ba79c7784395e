"""``benchmark.py inference``: seconds per batch of ``G(z)`` (mapping + synthesis, constant noise, psi 1,
no grad) for a StyleGAN2 generator.

``modconv=grouped`` runs the modulated convolution as one grouped conv with per-sample weights instead
of activation scaling around one shared conv (``scaled``); ``nvidia=PATH`` times NVIDIA's generator in
eval mode alongside, with the same :func:`time_generator`.
"""

from __future__ import annotations

import statistics
import time
import types
from collections.abc import Callable

import torch

from src.benchmark.harness import device_of, resolution_of
from src.benchmark.options import BASE, STYLEGAN, TRAINING, Sizes, Subject
from src.benchmark.report import side_by_side
from src.modules.stylegan2.generator import Generator
from src.profiling.measure import FlopCount, memory_report, peak_gflops, significant, synchronize

__all__ = ["SUBJECT", "time_generator"]


def time_generator(
    G: torch.nn.Module,
    args: types.SimpleNamespace,
    res: tuple[int, int],
    name: str,
    call: Callable[[torch.Tensor], torch.Tensor],
    model_flops: int | None = None,
) -> dict:
    """Time ``call(z)`` (``G`` with constant noise) over ``steps`` batches after ``warmup``.

    ``channels_last`` converts G's weights, ``compile`` wraps the call in ``torch.compile``,
    ``precision`` ``bf16-mixed``/``16-mixed`` runs it under autocast. FLOPs are ``model_flops`` (per
    batch) when given, else counted on one extra eager call.
    """
    device = device_of(args)
    if args.channels_last:
        G.to(memory_format=torch.channels_last)
    z = torch.randn(args.batch, args.z_dim, device=device, generator=torch.Generator(device).manual_seed(0))
    if model_flops is None:
        counter = FlopCount()
        with torch.inference_mode(), counter:
            call(z)
        model_flops = counter.total
    run = torch.compile(call) if args.compile else call
    autocast = args.precision in ("bf16-mixed", "16-mixed")
    dtype = torch.bfloat16 if "bf16" in args.precision else torch.float16

    def once() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=autocast):
            return run(z)

    for _ in range(args.warmup):
        once()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.steps):
        synchronize(device)
        t0 = time.perf_counter()
        once()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    peak, source = peak_gflops(device, args.precision)
    gflop = model_flops / 1e9
    out = {
        "model": name,
        "what": "inference",
        "device": str(device),
        "precision": args.precision,
        "resolution": list(res),
        "batch": args.batch,
        "compile": args.compile,
        "channels_last": args.channels_last,
        "channel_base": args.channel_base,
        "channel_max": args.channel_max,
        "map_depth": args.map_depth,
        "timed_batches": args.steps,
        "sec_per_batch": round(sec, 4),
        "sec_per_batch_min": round(min(times), 4),
        "images_per_sec": round(args.batch / sec, 2),
        "flops_per_batch": round(gflop * 1e9),
        "gflop_per_image": significant(gflop / args.batch),
        "gflops": significant(gflop / sec),
        "peak_fraction": significant(gflop / sec / peak),
        "peak_gflops": round(peak, 1),
        "peak_source": source,
        "params_G": sum(p.numel() for p in G.parameters()),
    }
    out.update(memory_report(device))
    out["torch"] = torch.__version__
    out["malloc_cache"] = not args.system_malloc
    return out


def run(args: types.SimpleNamespace) -> dict:
    res = resolution_of(args)
    device = device_of(args)
    G = (
        Generator(
            z_dim=args.z_dim,
            w_dim=args.z_dim,
            resolution=res,
            img_channels=3,
            map_depth=args.map_depth,
            channel_base=args.channel_base,
            channel_max=args.channel_max,
        )
        .eval()
        .requires_grad_(False)
        .to(device)
    )
    fused = args.modconv == "grouped"
    ours = time_generator(G, args, res, "gamut", lambda z: G(z, noise_mode="const", fused=fused))
    ours["modconv"] = args.modconv
    if not args.nvidia:
        return ours
    from src.profiling import nvidia_reference

    flops = ours["flops_per_batch"]
    theirs = nvidia_reference.time_inference(args.nvidia, args, device, res, time_generator, flops)
    return side_by_side(ours, theirs, "sec_per_batch")


SUBJECT = Subject(
    "inference", run, BASE | TRAINING | STYLEGAN | dict(nvidia=None, modconv="scaled"), Sizes([256], 16, 5, 1)
)
