"""Time gamut's real training step, its data loader and its color conversions; report JSON.

    python scripts/benchmark.py stylegan2 resolution=32 batch=16 channel_base=16384 steps=16
    python scripts/benchmark.py stylegan2 ... nvidia=~/src/stylegan3      # NVIDIA's, same run
    python scripts/benchmark.py stylegan2 resolution=32 batch=16 channel_base=16384 steps=16 augment=ada
    python scripts/benchmark.py inference resolution=256 batch=16 channel_base=16384 nvidia=~/src/stylegan3
    python scripts/benchmark.py segan mode=2 resolution=64 batch=16 channel_base=32768 z_dim=64
    python scripts/benchmark.py stylegan3 cfg=r resolution=32 batch=16 channel_base=8192 nvidia=~/src/stylegan3
    python scripts/benchmark.py chromagan resolution=224 batch=10 weights_dir=~/.cache/torch/hub/checkpoints
    python scripts/benchmark.py loader source=zip resolution=64 workers=2 batch=32 steps=50
    python scripts/benchmark.py colorspace space=all resolution=256 batch=16
    python scripts/benchmark.py explore resolution=256 channel_base=16384 steps=10

The first argument names what to time; ``key=value`` items follow, as for every gamut tool
(``resolution`` is ``R`` or ``[H,W]``). A full iteration is Gmain + Dmain, plus path length every 4
and R1 every 16 iterations, so the timed window (``steps``, rounded up to a multiple of 16)
amortizes the regularization exactly as training does. The step runs inside a real Lightning
Trainer, as ``make train`` runs it; data are random uint8 images already in memory
(:class:`src.benchmark.harness.RandomImages`), so the figure is the model's, not the loader's.
Prints: images/s, seconds per iteration, seconds per kimg, peak memory (CPU RSS or CUDA allocated),
and per phase (Gmain, Greg, Dmain, Dreg) the mean seconds, the FLOPs (counted on iteration 0 with
``FlopCount``) and the fraction of the device's peak: on CPU the measured best of a square
matmul, on known GPUs the data-sheet dense peak (the model FLOP utilization, MFU).
``compile=true``, ``channels_last=true`` and ``precision=`` set ``model.perf`` and the trainer as
training does; ``augment=ada|fixed|diffaugment`` (with ``augment_p``, default 0.5, and
``augment_pipeline``, default ``bgc``) times the step with D's augmentation on (``model.augment``).
``nvidia=PATH`` also times NVIDIA's StyleGAN2 from a checkout of NVlabs/stylegan3 at
PATH (``training/networks_stylegan2.py`` and its ``StyleGAN2Loss``) at the same architecture, in the
same process, and reports both and the speed-up (:mod:`src.profiling.nvidia_reference`).

``inference``: seconds per batch of ``G(z)`` (mapping + synthesis, constant noise, no grad), with the
same keys; ``nvidia=PATH`` times NVIDIA's generator in eval mode alongside; ``modconv=grouped`` runs
the modulated convolution as one grouped conv with per-sample weights instead of activation scaling
around one shared conv (``scaled``).
``stylegan3`` times StyleGAN3's iteration (Gmain, Dmain, R1 every 16; no path length) for ``cfg=t|r``
(NVIDIA's train.py settings; R doubles G's widths) and ``infer_steps`` batches of ``G_ema(z)``;
``nvidia=PATH`` builds NVIDIA's StyleGAN3 networks and loss as its train.py does and times them in the
same process (:mod:`src.profiling.nvidia_stylegan3`; on CPU their ops take the reference paths).
``segan`` times the same iteration for SEGAN ``mode`` 0-3; ``chromagan`` one ChromaGAN iteration
(G step, critic step with the gradient penalty, and the VGG-16 teacher when ``weights_dir`` holds
``vgg16-397923af.pth``) at ``width`` (conv channel multiplier, 1.0 = the paper).

``explore``: the latent explorer's latency per live control (ψ slider with the mapping cached, a new
seed, the interpolation slider, a SEGAN value slider in ``mode``): the median seconds from the change
to the PNG the page receives, batch 1, channels-last, over a random StyleGAN2 and SEGAN of the given
size (``images``: latents behind SEGAN's σ units, timed once as ``segan_stats_sec``).

``loader``: images/s through the real train loader of :class:`ImageDataModule` over an
:class:`ImageFolderDataset` (PNG decoding, crop/resize, collation, the transfer to ``device`` and
``on_after_batch_transfer``'s color encoding into ``space``). Without ``root`` it first writes
``images`` random PNGs at the target resolution into a temporary folder, or a dataset_tool zip of
them (``source=zip``); ``workers`` DataLoader workers. The first ``warmup`` batches (worker start-up)
are not timed.

``colorspace``: milliseconds per batch for ``encode`` and ``decode`` of each color space (``space=all``
or one name) on ``device`` (median of ``repeats``), and, when scikit-image is installed (``pip install
scikit-image``, or the ``bench`` extra), the same round trip with skimage on the CPU for comparison.

Keys every subcommand takes: ``device`` (cpu | cuda | gpu | auto), ``resolution``, ``batch``,
``warmup``, ``system_malloc`` (true: leave glibc's malloc as is; default: keep freed CPU memory, as
training does); the model subcommands also ``precision`` (32-true | bf16-mixed | 16-mixed),
``compile``, ``channels_last``, ``steps``; the StyleGAN2-type ones ``channel_base``, ``channel_max``,
``map_depth``, ``z_dim``; ``loader`` and ``colorspace`` also ``threads`` (torch CPU threads).

This module is the command line only: each subject is a module of :mod:`src.benchmark.subjects`,
found by name in :data:`src.benchmark.registry.SUBJECTS`.
"""

from __future__ import annotations

import json
import sys
import types

import torch
from omegaconf import OmegaConf

from src.benchmark.options import check_values
from src.benchmark.registry import ALL_KEYS, SUBJECTS
from src.utils.cli import console_entry, parse_subcommand
from src.utils.malloc import keep_freed_cpu_memory

PROG = "benchmark.py"

# The keys each subcommand takes, with their defaults (None: the subcommand's own size).
COMMANDS: dict[str, dict] = {name: dict(subject.keys) for name, subject in SUBJECTS.items()}
# What ``benchmark.py <subject> --help`` prints before the keys: the subject module's docstring.
DOCS: dict[str, str | None] = {name: sys.modules[subject.run.__module__].__doc__ for name, subject in SUBJECTS.items()}


def parse_args(argv: list[str]) -> types.SimpleNamespace:
    """``what key=value ...`` -> a namespace with every key of every subcommand (``what`` too), the
    subcommand's defaults filled in. Exits with one line on an unknown subcommand, key or bad value."""
    what, cfg = parse_subcommand(argv, COMMANDS, PROG, kind="benchmark", doc=__doc__, docs=DOCS)
    container = OmegaConf.to_container(cfg)
    assert isinstance(container, dict)
    given = {str(k): v for k, v in container.items()}
    check_values(f"{PROG} {what}", given, ALL_KEYS)
    args = types.SimpleNamespace(**(ALL_KEYS | given), what=what)
    res, batch, steps, warmup = SUBJECTS[what].sizes
    args.resolution = (
        res
        if args.resolution is None
        else ([args.resolution] if isinstance(args.resolution, int) else list(args.resolution))
    )
    args.batch = args.batch or batch
    args.steps = args.steps or steps
    args.warmup = warmup if args.warmup is None else args.warmup
    args.precision = str(args.precision)
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark ``argv`` names (``sys.argv[1:]`` when None), print its JSON report, return it."""
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    subject = SUBJECTS[args.what]
    if subject.check is not None:
        subject.check(args)
    if args.device == "auto":
        args.device = "gpu" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda":
        args.device = "gpu"
    if "threads" in subject.keys and args.threads is not None:
        torch.set_num_threads(args.threads)
    if not args.system_malloc:
        keep_freed_cpu_memory()
    torch.manual_seed(0)
    result = subject.run(args)
    print(json.dumps(result))
    return result


cli = console_entry(main)

if __name__ == "__main__":
    main()
