"""Time NVIDIA's StyleGAN2 next to gamut's, from a checkout of NVlabs/stylegan3 that the user provides.

Used by ``scripts/benchmark.py stylegan2 ... nvidia=PATH`` (:mod:`src.tools.benchmark`; issue 8's
side-by-side). Nothing of NVIDIA's code is part of gamut: PATH is a folder outside the repository
(``git clone https://github.com/NVlabs/stylegan3``), imported at run time. Their custom CUDA plugins are not
built; on CPU their ops take their pure-PyTorch reference paths, which is what a user without a
working compiler gets.

The training step mirrors ``training/training_loop.py`` of that repository for the ``stylegan2``
config: phases Gmain, Greg (every 4), Dmain, Dreg (every 16) in that order, each zeroing its
optimizer's gradients, calling their ``StyleGAN2Loss.accumulate_gradients`` with the phase gain
(its interval), cleaning the gradients with ``nan_to_num`` and stepping Adam with the lazy
regularization ratio; then the G_ema update. Loss settings are the config's: r1 gamma 10, style
mixing 0.9, path length weight 2 with ``pl_no_weight_grad``. Their generator is built as their
``train.py`` builds it for ``--cfg=stylegan2``: ``fused_modconv_default='inference_only'``, i.e. plain
convolutions around the modulation in training and the grouped (fused) convolution only in eval mode
(stylegan2-ada-pytorch's networks.py decides the same way). The architecture (resolution, channel
base / max, mapping depth, z/w) is the benchmark's, so both codes train the same network; on CPU
their fp16 layers are off (``num_fp16_res=0``, ``conv_clamp=None``, as their ``--fp32``), on CUDA
they keep their defaults (fp16 in the 4 highest resolutions, ``conv_clamp=256``).

:class:`TrainingLoop` is that loop for any phase list and G_ema rule; :mod:`src.profiling.nvidia_stylegan3`
runs their StyleGAN3 configs through it.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

from src.profiling.measure import LossHistory, PhaseRecorder, memory_report, peak_gflops, phase_report, synchronize


def load(path: str | Path) -> types.SimpleNamespace:
    """Import ``training.networks_stylegan2`` and ``training.loss`` from the checkout at ``path``."""
    root = Path(path).expanduser().resolve()
    if not (root / "training" / "networks_stylegan2.py").is_file():
        raise FileNotFoundError(
            f"nvidia={path}: no training/networks_stylegan2.py there; pass the folder of a "
            "clone of https://github.com/NVlabs/stylegan3"
        )
    # Their conv2d_gradfix imports parse_version from pkg_resources, which setuptools >= 81 dropped:
    # provide that one function when the module is missing.
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        from packaging.version import parse

        shim = types.ModuleType("pkg_resources")
        shim.parse_version = parse  # type: ignore[attr-defined]  # the one name their module imports
        sys.modules["pkg_resources"] = shim
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from training import loss, networks_stylegan2

    return types.SimpleNamespace(networks=networks_stylegan2, loss=loss, root=root)


def _kwargs(args, res: tuple[int, int], device: torch.device) -> tuple[dict, dict]:
    if res[0] != res[1]:
        raise ValueError(f"nvidia=: NVIDIA's StyleGAN2 needs square images, got resolution=[{res[0]},{res[1]}]")
    fp16 = dict(num_fp16_res=4, conv_clamp=256) if device.type == "cuda" else dict(num_fp16_res=0, conv_clamp=None)
    common = dict(
        c_dim=0,
        img_resolution=res[0],
        img_channels=3,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        **fp16,
    )
    g = dict(
        z_dim=args.z_dim,
        w_dim=args.z_dim,
        mapping_kwargs=dict(num_layers=args.map_depth),
        fused_modconv_default="inference_only",  # their train.py for cfg=stylegan2: grouped conv for inference only
        **common,
    )
    d = dict(epilogue_kwargs=dict(mbstd_group_size=min(4, args.batch)), **common)
    return g, d


class Phase(NamedTuple):
    """One phase of their loop: the name timed (gamut's), the name their loss takes, the network it
    trains, its optimizer and how often it runs."""

    name: str
    loss_phase: str
    module: Any  # their network (untyped code)
    opt: torch.optim.Optimizer
    interval: int


class TrainingLoop:
    """Their ``training_loop.py`` iteration on in-memory uint8 ``images``: one draw of ``z`` per phase,
    each due phase (zero grad, ``requires_grad_`` on, ``accumulate_gradients`` with gain = interval,
    gradients cleaned with ``nan_to_num`` through one flat tensor, Adam step) in ``phases``' order, then
    the G_ema update with ``ema_beta(cur_nimg)`` and the buffers copied. ``recorder`` times each phase."""

    def __init__(
        self,
        G: Any,
        G_ema: Any,
        loss: Any,
        phases: list[Phase],
        images: torch.Tensor,
        batch: int,
        device: torch.device,
        ema_beta: Callable[[int], float],
        recorder: PhaseRecorder,
    ) -> None:
        self.G, self.G_ema, self.loss, self.phases = G, G_ema, loss, phases
        self.images, self.batch, self.device, self.ema_beta, self.recorder = images, batch, device, ema_beta, recorder
        self.seen = 0  # their cur_nimg
        self.history: LossHistory | None = None  # set: one row of losses per iteration

    def iteration(self, i: int) -> None:
        """Iteration ``i`` (their ``batch_idx``: a phase runs when ``i % interval == 0``)."""
        batch, device = self.batch, self.device
        if self.history is not None:
            self.history.start()
        idx = torch.randint(0, len(self.images), (batch,))
        real = self.images[idx].to(device).to(torch.float32) / 127.5 - 1
        c = torch.zeros(batch, 0, device=device)
        all_z = torch.randn(len(self.phases) * batch, self.G.z_dim, device=device).split(batch)
        for phase, z in zip(self.phases, all_z):
            if i % phase.interval != 0:
                continue
            with self.recorder(phase.name):
                phase.opt.zero_grad(set_to_none=True)
                phase.module.requires_grad_(True)
                self.loss.accumulate_gradients(
                    phase=phase.loss_phase,
                    real_img=real,
                    real_c=c,
                    gen_z=z,
                    gen_c=c,
                    gain=phase.interval,
                    cur_nimg=self.seen,
                )
                phase.module.requires_grad_(False)
                params = [p for p in phase.module.parameters() if p.grad is not None]
                if params:
                    flat = torch.cat([p.grad.flatten() for p in params])
                    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
                    for p, g in zip(params, flat.split([p.numel() for p in params])):
                        p.grad = g.reshape(p.shape)
                phase.opt.step()
        beta = self.ema_beta(self.seen)
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        self.seen += batch

    def timed(self, start: int, steps: int) -> float:
        """Iterations ``start .. start + steps - 1`` with the recorder timing; the mean seconds of one."""
        self.recorder.timing = True
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        synchronize(self.device)
        t0 = time.perf_counter()
        for i in range(start, start + steps):
            self.iteration(i)
        synchronize(self.device)
        return (time.perf_counter() - t0) / steps

    def report(
        self, name: str, root: Path, D: torch.nn.Module, precision: str, peak_precision: str, it: float, steps: int
    ) -> dict:
        """Their run, ``steps`` iterations of ``it`` seconds timed, as a report shaped like gamut's
        (:func:`src.benchmark.report.training_report`); the fraction of peak is taken against the peak
        of ``peak_precision`` (gamut's run's, so both reports divide by the same figure)."""
        peak, source = peak_gflops(self.device, peak_precision)
        intervals = {p.name: p.interval for p in self.phases}
        out = {
            "model": name,
            "source": str(root),
            "device": str(self.device),
            "precision": precision,
            "resolution": [int(s) for s in self.images.shape[-2:]],
            "batch": self.batch,
            "timed_iterations": steps,
            "sec_per_iteration": round(it, 4),
            "images_per_sec": round(self.batch / it, 3),
            "sec_per_kimg": round(1000 / self.batch * it, 1),
            "params_G": count_parameters(self.G),
            "params_D": count_parameters(D),
            **phase_report(self.recorder, intervals, peak, it),
            "peak_gflops": round(peak, 1),
            "peak_source": source,
        }
        out.update(memory_report(self.device))
        return out


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def time_training(path: str, data, args, device: torch.device, steps: int, model_flops: dict[str, int]) -> dict:
    """NVIDIA's full iteration: ``args.warmup`` untimed iterations (the first runs every phase), then
    ``steps`` timed ones. Returns a report shaped like gamut's.

    FLOP fractions use ``model_flops`` (per phase, counted on gamut's graph of the same network), so
    both codes divide by the same work.
    """
    nv = load(path)
    res = tuple(data.resolution)
    g_kwargs, d_kwargs = _kwargs(args, res, device)
    torch.manual_seed(0)
    G = nv.networks.Generator(**g_kwargs).train().requires_grad_(False).to(device)
    D = nv.networks.Discriminator(**d_kwargs).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    loss = nv.loss.StyleGAN2Loss(
        device=device, G=G, D=D, r1_gamma=10.0, style_mixing_prob=0.9, pl_weight=2.0, pl_no_weight_grad=True
    )
    phases = []  # in their order
    for name, module, interval in (("G", G, 4), ("D", D, 16)):
        ratio = interval / (interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=0.0025 * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)
        phases += [
            Phase(f"{name}main", f"{name}main", module, opt, 1),
            Phase(f"{name}reg", f"{name}reg", module, opt, interval),
        ]
    rec = PhaseRecorder(device)
    rec.flops = dict(model_flops)
    batch = args.batch
    ema_beta = 0.5 ** (batch / (10 * batch / 32 * 1000))  # their ema_kimg = batch * 10 / 32
    loop = TrainingLoop(G, G_ema, loss, phases, data.images, batch, device, lambda _: ema_beta, rec)
    for i in range(args.warmup):
        loop.iteration(i)
    it = loop.timed(args.warmup, steps)
    precision = "fp16 in the top 4 resolutions" if device.type == "cuda" else "32-true"
    return loop.report("nvidia stylegan2", nv.root, D, precision, args.precision, it, steps)


def time_inference(
    path: str, args, device: torch.device, res: tuple[int, int], time_generator, model_flops: int
) -> dict:
    """NVIDIA's ``G(z, c)`` in eval mode, which (``inference_only``) takes their grouped modulated
    convolution, as their generation scripts run it; constant noise, fp32 on CPU, timed by the same
    ``time_generator`` as gamut's."""
    nv = load(path)
    g_kwargs, _ = _kwargs(args, res, device)
    torch.manual_seed(0)
    G = nv.networks.Generator(**g_kwargs).eval().requires_grad_(False).to(device)
    c = torch.zeros(args.batch, 0, device=device)
    force_fp32 = device.type != "cuda"
    out = time_generator(
        G,
        args,
        res,
        "nvidia stylegan2",
        lambda z: G(z, c, truncation_psi=1, noise_mode="const", force_fp32=force_fp32),
        model_flops=model_flops,
    )
    out["source"] = str(nv.root)
    return out
