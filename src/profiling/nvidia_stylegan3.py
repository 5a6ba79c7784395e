"""Time NVIDIA's StyleGAN3 (configs T and R) next to gamut's, from a checkout of NVlabs/stylegan3 that the
user provides.

Used by ``scripts/benchmark.py stylegan3 cfg=t|r ... nvidia=PATH`` (:mod:`src.benchmark.subjects.stylegan3`).
As for StyleGAN2 (:mod:`src.profiling.nvidia_reference`, whose checkout loading and training loop this
module reuses), nothing of NVIDIA's code is part of gamut: PATH is a clone outside the repository, imported
at run time.

Their networks and loss are built as their ``train.py`` builds them for ``--cfg=stylegan3-t`` /
``--cfg=stylegan3-r``: ``training.networks_stylegan3.Generator`` with ``magnitude_ema_beta = 0.5 ** (batch /
20e3)`` and a 2-layer mapping (the benchmark's ``map_depth``, default 2); for R also ``conv_kernel=1``, G's
channel base and max doubled (D keeps them) and ``use_radial_filters=True``; ``networks_stylegan2``'s
Discriminator; ``StyleGAN2Loss`` with ``pl_weight`` 0 and ``style_mixing_prob`` 0 (their defaults, which
``train.py`` keeps for these configs), for R ``blur_init_sigma=10`` fading over ``batch * 200 / 32`` kimg;
Adam with G's lr 0.0025 and D's 0.002, betas (0, 0.99). ``G_reg_interval`` is unset for these configs, so
``training/training_loop.py`` runs G's phase as ``Gboth`` (which the loss turns into ``Gmain`` since
``pl_weight`` is 0) with G's lr and betas unscaled, then ``Dmain``, ``Dreg`` every 16 (lazy: D's lr and
betas scaled by 16/17), then the G_ema update (``ema_kimg = batch * 10 / 32`` with their 0.05 ramp-up).
``r1_gamma`` is :data:`R1_GAMMA` (``--gamma`` is required; its value does not change the work).
``augment=ada|fixed`` with the ``bgc`` pipeline gives their loss their ``training.augment.AugmentPipe``
with train.py's ``bgc`` multipliers at ``p = augment_p`` (ADA's adjustment of ``p``, a scalar every 4
iterations, is left out).

Precision: on CPU ``num_fp16_res=0`` and ``conv_clamp=None``, as their ``--fp32``; on CUDA their defaults
(fp16 in the 4 highest resolutions, ``conv_clamp=256``) when gamut runs a mixed precision, ``--fp32``'s when
gamut runs ``32-true``. Their custom ops take their CUDA plugins only on a CUDA device: on CPU
``filtered_lrelu`` runs ``_filtered_lrelu_ref`` (and ``bias_act``/``upfirdn2d`` their reference paths);
on CUDA, when a plugin fails to build, that op is switched to ``impl='ref'`` and the report says so. The
report's ``ops`` field names the path each op took; for ``filtered_lrelu`` it counts, over the untimed
warm-up iterations, how many calls reached ``_filtered_lrelu_ref``.
"""

from __future__ import annotations

import copy
import functools
import importlib
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from src.profiling import nvidia_reference
from src.profiling.measure import LossHistory, PhaseRecorder, peak_gflops, significant

__all__ = [
    "R1_GAMMA",
    "discriminator_kwargs",
    "generator_kwargs",
    "load",
    "loss_kwargs",
    "recording_losses",
    "time_inference",
    "time_training",
]

#: ``--gamma`` for both codes (NVIDIA's docs/configs.md starting value at 256 px; any value > 0 costs the same)
R1_GAMMA = 2.0
#: their ``--aug=ada`` pipeline (train.py's ``augment_kwargs``), what gamut calls ``bgc``
BGC = dict(
    xflip=1,
    rotate90=1,
    xint=1,
    scale=1,
    rotate=1,
    aniso=1,
    xfrac=1,
    brightness=1,
    contrast=1,
    lumaflip=1,
    hue=1,
    saturation=1,
)
OPS = ("filtered_lrelu", "bias_act", "upfirdn2d")


def load(path: str | Path) -> types.SimpleNamespace:
    """``training.networks_stylegan3``, ``networks_stylegan2``, ``loss``, ``augment`` and their custom ops
    (``torch_utils.ops``) from the checkout at ``path``."""
    nv = nvidia_reference.load(path)  # checks the checkout, installs the pkg_resources stand-in, sys.path
    if not (nv.root / "training" / "networks_stylegan3.py").is_file():
        raise FileNotFoundError(f"nvidia={path}: no training/networks_stylegan3.py there (a NVlabs/stylegan3 clone?)")
    nv.generator = importlib.import_module("training.networks_stylegan3")
    nv.augment = importlib.import_module("training.augment")
    nv.ops = {name: importlib.import_module(f"torch_utils.ops.{name}") for name in OPS}
    return nv


def fp16_kwargs(device: torch.device, precision: str) -> dict[str, Any]:
    """Their defaults on CUDA under a mixed precision; their ``--fp32`` otherwise."""
    if device.type == "cuda" and precision != "32-true":
        return dict(num_fp16_res=4, conv_clamp=256)
    return dict(num_fp16_res=0, conv_clamp=None)


def generator_kwargs(cfg: str, args, res: int, device: torch.device) -> dict[str, Any]:
    """``networks_stylegan3.Generator``'s arguments as train.py sets them for ``--cfg=stylegan3-<cfg>``."""
    r = cfg == "r"
    return dict(
        z_dim=args.z_dim,
        w_dim=args.z_dim,
        c_dim=0,
        img_resolution=res,
        img_channels=3,
        mapping_kwargs=dict(num_layers=args.map_depth),
        channel_base=args.channel_base * (2 if r else 1),  # R: "Double the number of feature maps"
        channel_max=args.channel_max * (2 if r else 1),
        magnitude_ema_beta=0.5 ** (args.batch / 20e3),
        conv_kernel=1 if r else 3,
        use_radial_filters=r,
        **fp16_kwargs(device, args.precision),
    )


def discriminator_kwargs(args, res: int, device: torch.device) -> dict[str, Any]:
    """``networks_stylegan2.Discriminator``'s arguments as train.py sets them (any StyleGAN3 config)."""
    return dict(
        c_dim=0,
        img_resolution=res,
        img_channels=3,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        block_kwargs=dict(freeze_layers=0),
        mapping_kwargs={},
        epilogue_kwargs=dict(mbstd_group_size=min(4, args.batch)),
        **fp16_kwargs(device, args.precision),
    )


def loss_kwargs(cfg: str, batch: int, gamma: float = R1_GAMMA) -> dict[str, Any]:
    """``StyleGAN2Loss``'s arguments as train.py sets them for ``--cfg=stylegan3-<cfg> --gamma=<gamma>``."""
    out: dict[str, Any] = dict(r1_gamma=gamma, style_mixing_prob=0, pl_weight=0)
    if cfg == "r":
        out.update(blur_init_sigma=10, blur_fade_kimg=batch * 200 / 32)
    return out


def _square(res: tuple[int, int]) -> int:
    if res[0] != res[1]:
        raise ValueError(f"nvidia=: NVIDIA's StyleGAN3 needs square images, got resolution=[{res[0]},{res[1]}]")
    return res[0]


def _use_reference(module: Any, name: str) -> None:
    """Make their op ``module.<name>`` run with ``impl='ref'`` whatever ``impl`` a caller passes (their
    ``filter2d`` passes its own ``impl='cuda'`` on to ``upfirdn2d``)."""
    original = vars(module)[name]

    @functools.wraps(original)
    def reference(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **(kwargs | dict(impl="ref")))

    setattr(module, name, reference)


def choose_ops(nv: types.SimpleNamespace, device: torch.device) -> dict[str, str]:
    """Which path each custom op will take: on CUDA their plugin when it builds, else their reference."""
    paths = {}
    for name, module in nv.ops.items():
        if device.type != "cuda":
            paths[name] = "reference (CPU tensors)"
            continue
        try:
            module._init()  # builds or loads their plugin; raises when it cannot
            paths[name] = "cuda plugin"
        except Exception as e:  # no compiler, no ninja, ...: the op's own reference, as on CPU
            _use_reference(module, name)
            paths[name] = f"reference (plugin did not build: {type(e).__name__})"
    return paths


@contextmanager
def counting_filtered_lrelu(flrelu: Any) -> Iterator[dict[str, int]]:
    """Count their ``filtered_lrelu`` calls and how many reached ``_filtered_lrelu_ref`` (restored after)."""
    calls = {"all": 0, "ref": 0}
    outer, ref = flrelu.filtered_lrelu, flrelu._filtered_lrelu_ref

    def counted_outer(*a, **k):
        calls["all"] += 1
        return outer(*a, **k)

    def counted_ref(*a, **k):
        calls["ref"] += 1
        return ref(*a, **k)

    flrelu.filtered_lrelu, flrelu._filtered_lrelu_ref = counted_outer, counted_ref
    try:
        yield calls
    finally:
        flrelu.filtered_lrelu, flrelu._filtered_lrelu_ref = outer, ref


#: their loss's ``training_stats.report`` names -> gamut's log keys for the same quantities
LOSS_NAMES = {"Loss/G/loss": "Loss/G", "Loss/D/loss": "Loss/D", "Loss/D/reg": "Loss/r1"}


@contextmanager
def recording_losses(stats: Any, history: LossHistory) -> Iterator[None]:
    """Route their ``training_stats.report`` calls for :data:`LOSS_NAMES`' names into ``history`` too."""
    report = stats.report

    def recorded(name: str, value: Any) -> Any:
        if name in LOSS_NAMES:
            history.add(LOSS_NAMES[name], value)
        return report(name, value)

    stats.report = recorded
    try:
        yield
    finally:
        stats.report = report


def time_training(
    path: str,
    cfg: str,
    data,
    args,
    device: torch.device,
    steps: int,
    model_flops: dict[str, int],
    quality: Callable[[Callable[[torch.Tensor], torch.Tensor]], dict] | None = None,
) -> dict:
    """NVIDIA's StyleGAN3 iteration: ``args.warmup`` untimed iterations (the first runs every phase), then
    ``steps`` timed ones; a report shaped like gamut's, FLOP fractions from ``model_flops`` (gamut's
    count of the same network, per phase), with their losses (``losses``: :class:`LossHistory`'s summary
    under gamut's names) and, given ``quality``, ``quality(G_ema(z))`` after the run."""
    nv = load(path)
    res = _square(tuple(data.resolution))
    ops = choose_ops(nv, device)
    torch.manual_seed(0)
    G = nv.generator.Generator(**generator_kwargs(cfg, args, res, device)).train().requires_grad_(False).to(device)
    D = nv.networks.Discriminator(**discriminator_kwargs(args, res, device)).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    augment_pipe = None
    if args.augment != "none":
        if args.augment not in ("ada", "fixed") or args.augment_pipeline != "bgc":
            raise ValueError(
                f"nvidia=: NVIDIA's train.py augments with ADA's bgc pipeline only, "
                f"not augment={args.augment} augment_pipeline={args.augment_pipeline}"
            )
        augment_pipe = nv.augment.AugmentPipe(**BGC).train().requires_grad_(False).to(device)
        augment_pipe.p.copy_(torch.as_tensor(args.augment_p))
    batch = args.batch
    loss = nv.loss.StyleGAN2Loss(
        device=device, G=G, D=D, augment_pipe=augment_pipe, **loss_kwargs(cfg, batch, args.gamma)
    )
    phases = [nvidia_reference.Phase("Gmain", "Gboth", G, _adam(G, 0.0025, None), 1)]  # G_reg_interval None
    opt_d = _adam(D, 0.002, 16)
    phases += [
        nvidia_reference.Phase("Dmain", "Dmain", D, opt_d, 1),
        nvidia_reference.Phase("Dreg", "Dreg", D, opt_d, 16),
    ]
    rec = PhaseRecorder(device)
    rec.flops = dict(model_flops)
    ema_nimg = batch * 10 / 32 * 1000  # their ema_kimg, ramped up over the first images (ema_rampup 0.05)
    loop = nvidia_reference.TrainingLoop(
        G,
        G_ema,
        loss,
        phases,
        data.images,
        batch,
        device,
        lambda seen: 0.5 ** (batch / max(min(ema_nimg, seen * 0.05), 1e-8)),
        rec,
    )
    loop.history = history = LossHistory()
    with recording_losses(nv.loss.training_stats, history):
        with counting_filtered_lrelu(nv.ops["filtered_lrelu"]) as calls:
            for i in range(args.warmup):
                loop.iteration(i)
        ops["filtered_lrelu"] += f": {calls['ref']} of {calls['all']} calls in _filtered_lrelu_ref"
        it = loop.timed(args.warmup, steps)
    fp16 = fp16_kwargs(device, args.precision)["num_fp16_res"] > 0
    out = loop.report(
        f"nvidia stylegan3-{cfg}",
        nv.root,
        D,
        "fp16 in the top 4 resolutions" if fp16 else "32-true",
        args.precision,
        it,
        steps,
    )
    out["ops"] = ops
    out["augment"] = "their AugmentPipe (bgc), p fixed" if augment_pipe is not None else "none"
    out["losses"] = history.summary()
    if quality is not None:
        c = torch.zeros(1, 0, device=device)
        out["quality"] = quality(lambda z: G_ema(z, c.expand(len(z), 0), truncation_psi=1, noise_mode="const"))
    return out


def _adam(module: torch.nn.Module, lr: float, reg_interval: int | None) -> torch.optim.Optimizer:
    """Their optimizer: Adam, betas (0, 0.99), eps 1e-8; lr and betas scaled for lazy regularization."""
    ratio = 1.0 if reg_interval is None else reg_interval / (reg_interval + 1)
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)


def time_inference(
    path: str,
    cfg: str,
    args,
    device: torch.device,
    res: tuple[int, int],
    time_generator: Callable[..., dict],
    model_flops: int,
) -> dict:
    """NVIDIA's ``G(z, c)`` in eval mode (constant noise mode, psi 1), built as for training, timed by the
    same ``time_generator`` as gamut's over ``args.steps`` batches. It runs as their code runs it: no
    channels-last conversion, no ``torch.compile``, no autocast (their layers pick fp16 themselves); the
    fraction of peak is taken against the peak of gamut's ``args.precision``."""
    nv = load(path)
    side = _square(res)
    ops = choose_ops(nv, device)
    torch.manual_seed(0)
    G = nv.generator.Generator(**generator_kwargs(cfg, args, side, device)).eval().requires_grad_(False).to(device)
    c = torch.zeros(args.batch, 0, device=device)
    force_fp32 = fp16_kwargs(device, args.precision)["num_fp16_res"] == 0
    plain = types.SimpleNamespace(**(vars(args) | dict(channels_last=False, compile=False, precision="32-true")))
    out = time_generator(
        G,
        plain,
        res,
        f"nvidia stylegan3-{cfg}",
        lambda z: G(z, c, truncation_psi=1, noise_mode="const", force_fp32=force_fp32),
        model_flops=model_flops,
    )
    peak, source = peak_gflops(device, args.precision)
    out.update(peak_fraction=significant(out["gflops"] / peak), peak_gflops=round(peak, 1), peak_source=source)
    out.update(precision="32-true" if force_fp32 else "fp16 in the top 4 resolutions", ops=ops, source=str(nv.root))
    return out
