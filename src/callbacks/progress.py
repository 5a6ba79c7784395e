"""Training progress in kimg: a bar on a terminal, NVIDIA-style tick lines everywhere else.

``callbacks.progress`` (src/conf/callbacks/default.yaml) builds one of:

- on a terminal with ``trainer.enable_progress_bar=true``: :class:`KimgProgressBar`, Lightning's
  TQDM bar counting kimg, with the total, s/kimg and the ETA in its postfix;
- otherwise (SLURM, nohup, CI, a pipe, or the bar turned off): tick lines on stdout, one every
  ``tick_kimg`` thousand images, as NVIDIA's training/training_loop.py prints them::

      tick 3     kimg 12.0/100.0 time 1m 02s      sec/tick 20.1    sec/kimg 5.02    eta 7m 22s       maxram 1.20 GB  gpumem 0.00 GB

  ``tick`` counts ticks since this launch (0: after its first iteration), ``kimg`` is images seen
  over all devices / 1000 (of the total, when the run has a length), ``time`` the time since this
  launch started training (a resume restarts it), ``sec/tick`` and ``sec/kimg`` the last tick's
  duration and speed, ``eta`` the time left at the speed since this launch started, ``maxram``
  the peak resident CPU memory of this process and ``gpumem`` the peak CUDA memory allocated by
  torch (0 off CUDA). No carriage returns: a log file gets one line per tick.

Both log the same figures on rank 0 as ``progress/sec_per_kimg``, ``progress/sec_per_tick``,
``progress/eta_s``, ``progress/peak_cpu_mem_gb``, ``progress/peak_gpu_mem_gb`` (``progress/kimg``
is logged by the modules themselves). The length comes from the run's StopAtIteration callback
(src/callbacks/limits.py, ``trainer.max_kimg`` / ``trainer.max_steps``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from pytorch_lightning.callbacks import Callback, ProgressBar, TQDMProgressBar

from src.callbacks.limits import Limits, StopAtIteration
from src.profiling.measure import peak_rss_bytes


def format_time(seconds: float) -> str:
    """``42s``, ``1m 02s``, ``3h 04m 05s``, ``2d 03h 04m`` (NVIDIA's dnnlib.util.format_time)."""
    s = int(round(max(0.0, float(seconds))))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s"
    return f"{s // 86400}d {s // 3600 % 24:02d}h {s // 60 % 60:02d}m"


def peak_cpu_mem_gb() -> float:
    """Peak resident memory of this process in GiB (0 where the OS does not say)."""
    return (peak_rss_bytes() or 0) / 2**30


def peak_gpu_mem_gb(device: torch.device | None) -> float:
    """Peak CUDA memory allocated by torch on ``device`` in GiB (0 off CUDA)."""
    if device is None or device.type != "cuda" or not torch.cuda.is_available():
        return 0.0
    return torch.cuda.max_memory_allocated(device) / 2**30


@dataclass
class Tick:
    """One tick's figures (times in seconds)."""

    tick: int
    kimg: float
    total_kimg: float | None
    time: float
    sec_per_tick: float
    sec_per_kimg: float
    eta: float | None
    cpu_mem_gb: float = 0.0
    gpu_mem_gb: float = 0.0
    augment: float | None = None  # ADA's p (NVIDIA's ``augment`` column) when augmentation is on

    def line(self, digits: int = 1) -> str:
        kimg = f"{self.kimg:.{digits}f}" + ("" if self.total_kimg is None else f"/{self.total_kimg:.{digits}f}")
        fields = [
            f"tick {self.tick:<5d}",
            f"kimg {kimg:<8s}",
            f"time {format_time(self.time):<12s}",
            f"sec/tick {self.sec_per_tick:<7.1f}",
            f"sec/kimg {self.sec_per_kimg:<7.2f}",
        ]
        if self.eta is not None:
            fields.append(f"eta {format_time(self.eta):<12s}")
        fields += [f"maxram {self.cpu_mem_gb:.2f} GB ", f"gpumem {self.gpu_mem_gb:.2f} GB "]
        if self.augment is not None:
            fields.append(f"augment {self.augment:.3f}")
        return " ".join(fields).rstrip()

    def metrics(self) -> dict[str, float]:
        out = {
            "progress/sec_per_kimg": self.sec_per_kimg,
            "progress/sec_per_tick": self.sec_per_tick,
            "progress/peak_cpu_mem_gb": self.cpu_mem_gb,
            "progress/peak_gpu_mem_gb": self.gpu_mem_gb,
        }
        if self.eta is not None:
            out["progress/eta_s"] = self.eta
        return out


class ProgressClock:
    """Time, speed and ETA of one launch, measured from where it started (a resume starts at its
    checkpoint's ``cur_nimg``, so the ETA uses only the images trained in this launch).

    ``clock`` is the time source (None: ``time.monotonic``; tests pass a fake one).
    """

    def __init__(self, tick_kimg: float = 4.0, clock: Callable[[], float] | None = None) -> None:
        self.tick_kimg = float(tick_kimg)
        self.clock = clock or (lambda: time.monotonic())
        self.limits = Limits()
        self.started = False

    def start(self, cur_nimg: int, iteration: int, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.start_time = self.tick_start_time = self.clock()
        self.start_nimg = self.tick_start_nimg = int(cur_nimg)
        self.start_iteration = int(iteration)
        self.cur_nimg, self.iteration = int(cur_nimg), int(iteration)
        self.tick = 0
        self.last: Tick | None = None
        self.started = True

    def update(self, cur_nimg: int, iteration: int) -> None:
        self.cur_nimg, self.iteration = int(cur_nimg), int(iteration)

    def sec_per_kimg(self) -> float | None:
        """Seconds per thousand images since the start of this launch (None before its first image)."""
        done = self.cur_nimg - self.start_nimg
        return None if done <= 0 else (self.clock() - self.start_time) / done * 1000

    def total_nimg(self) -> float | None:
        """The run's length in images: ``max_kimg * 1000``, or ``max_steps`` x the images per
        iteration seen in this launch (None without a length, or before the first iteration)."""
        if self.limits.max_kimg is not None:
            return self.limits.max_kimg * 1000
        if self.limits.max_steps is None or self.iteration <= self.start_iteration:
            return None
        per_iteration = (self.cur_nimg - self.start_nimg) / (self.iteration - self.start_iteration)
        return self.cur_nimg + (self.limits.max_steps - self.iteration) * per_iteration

    def eta(self) -> float | None:
        """Seconds left at this launch's average speed (None without a length or a speed yet)."""
        total, spk = self.total_nimg(), self.sec_per_kimg()
        if total is None or spk is None:
            return None
        return max(0.0, total - self.cur_nimg) / 1000 * spk

    def tick_due(self) -> bool:
        """NVIDIA's rule: tick 0 after the first iteration, then every ``tick_kimg`` thousand images."""
        return (
            self.tick == 0 and self.last is None and self.cur_nimg > self.start_nimg
        ) or self.cur_nimg >= self.tick_start_nimg + self.tick_kimg * 1000

    def take_tick(self, cpu_mem_gb: float = 0.0, gpu_mem_gb: float = 0.0) -> Tick:
        """Close the current tick and return its figures."""
        now = self.clock()
        images = self.cur_nimg - self.tick_start_nimg
        sec_per_tick = now - self.tick_start_time
        total = self.total_nimg()
        tick = Tick(
            tick=self.tick if self.last is None else self.tick + 1,
            kimg=self.cur_nimg / 1000,
            total_kimg=None if total is None else total / 1000,
            time=now - self.start_time,
            sec_per_tick=sec_per_tick,
            sec_per_kimg=sec_per_tick / images * 1000 if images > 0 else 0.0,
            eta=self.eta(),
            cpu_mem_gb=cpu_mem_gb,
            gpu_mem_gb=gpu_mem_gb,
        )
        self.tick, self.last = tick.tick, tick
        self.tick_start_time, self.tick_start_nimg = now, self.cur_nimg
        return tick


def _limits_of(trainer) -> Limits:
    for cb in trainer.callbacks:
        if isinstance(cb, StopAtIteration):
            return cb.limits
    return Limits()


class _ProgressMixin:
    """The shared part: start the clock, close ticks, log the figures on rank 0."""

    clock: ProgressClock

    def _start(self, trainer, pl_module) -> None:
        self.clock.start(pl_module.cur_nimg, pl_module.iteration, _limits_of(trainer))

    def _advance(self, trainer, pl_module) -> Tick | None:
        """Update the clock after an iteration; return the tick that closed there, if any."""
        if not self.clock.started or not trainer.is_global_zero:
            return None
        self.clock.update(pl_module.cur_nimg, pl_module.iteration)
        tick = None
        if self.clock.tick_due():
            tick = self.clock.take_tick(peak_cpu_mem_gb(), peak_gpu_mem_gb(pl_module.device))
            tick.augment = _augment_p(trainer)
        if self.clock.last is not None:  # every iteration, so each logging step carries the latest figures
            pl_module.log_dict(self.clock.last.metrics(), on_step=True, on_epoch=False, rank_zero_only=True)
        return tick

    def _final_tick(self, trainer, pl_module) -> Tick | None:
        """NVIDIA's tick at the end of training, when images were trained since the last one."""
        if not self.clock.started or not trainer.is_global_zero:
            return None
        self.clock.update(pl_module.cur_nimg, pl_module.iteration)
        if self.clock.cur_nimg <= self.clock.tick_start_nimg:
            return None
        tick = self.clock.take_tick(peak_cpu_mem_gb(), peak_gpu_mem_gb(pl_module.device))
        tick.augment = _augment_p(trainer)
        return tick


def _augment_p(trainer) -> float | None:
    """The augmentation probability the model logged this iteration (``augment/p``), if any."""
    value = trainer.callback_metrics.get("augment/p")
    return None if value is None else float(value)


class TickProgress(_ProgressMixin, Callback):
    """Tick lines on stdout (no carriage returns) and the progress metrics; shows no bar."""

    def __init__(self, tick_kimg: float = 4.0, stream=None) -> None:
        super().__init__()
        self.clock = ProgressClock(tick_kimg)
        self.stream = stream  # None: sys.stdout at print time (pytest's capture replaces it)
        self.digits = 1 if self.clock.tick_kimg >= 1 else 3

    def _print(self, tick: Tick | None) -> None:
        if tick is not None:
            print(tick.line(self.digits), file=self.stream or sys.stdout, flush=True)

    def on_train_start(self, trainer, pl_module) -> None:
        self._start(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._print(self._advance(trainer, pl_module))

    def on_train_end(self, trainer, pl_module) -> None:
        self._print(self._final_tick(trainer, pl_module))


class TickProgressBar(TickProgress, ProgressBar):
    """:class:`TickProgress` in Lightning's progress-bar slot (``enable_progress_bar=true`` off a
    terminal): it replaces Lightning's carriage-return bar."""

    def __init__(self, tick_kimg: float = 4.0, stream=None) -> None:
        super().__init__(tick_kimg, stream)
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _print(self, tick: Tick | None) -> None:
        if self._enabled:
            super()._print(tick)


class KimgProgressBar(_ProgressMixin, TQDMProgressBar):
    """Lightning's TQDM bar counting kimg: ``12.0/100.0 kimg [elapsed, s/kimg=5.02, eta=6m 32s, ...]``."""

    TOTAL_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} kimg [{elapsed}{postfix}]"
    OPEN_FORMAT = "{desc}: {n_fmt} kimg [{elapsed}{postfix}]"

    def __init__(self, tick_kimg: float = 4.0, refresh_rate: int = 1) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.clock = ProgressClock(tick_kimg)

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self._start(trainer, pl_module)

    def on_train_epoch_start(self, trainer, *_) -> None:
        super().on_train_epoch_start(trainer, *_)
        bar = self.train_progress_bar
        bar.total, bar.initial = None, 0
        bar.bar_format = self.OPEN_FORMAT
        bar.set_description("Training")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._advance(trainer, pl_module)
        bar = self.train_progress_bar
        # no batch count to end on (the run ends on images seen): the refresh rate alone decides
        if bar is None or not (self.is_enabled and (batch_idx + 1) % self.refresh_rate == 0):
            return
        total = self.clock.total_nimg()
        bar.total = None if total is None else round(total / 1000, 3)
        bar.bar_format = self.OPEN_FORMAT if total is None else self.TOTAL_FORMAT
        bar.n = round(pl_module.cur_nimg / 1000, 3)
        postfix = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "kimg"}
        spk, eta = self.clock.sec_per_kimg(), self.clock.eta()
        if spk is not None:
            postfix["s/kimg"] = f"{spk:.2f}"
        if eta is not None:
            postfix["eta"] = format_time(eta)
        p = _augment_p(trainer)
        if p is not None:
            postfix["augment"] = f"{p:.3f}"
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()


def make_progress(tick_kimg: float = 4.0, bar: bool = True, refresh_rate: int = 1, tty: bool | None = None) -> Callback:
    """The progress callback for this launch: a bar when ``bar`` (``trainer.enable_progress_bar``)
    and stdout is a terminal (``tty``: None asks ``sys.stdout.isatty()``), else tick lines."""
    if tty is None:
        tty = bool(getattr(sys.stdout, "isatty", lambda: False)())
    if bar and tty:
        return KimgProgressBar(tick_kimg, refresh_rate)
    return TickProgressBar(tick_kimg) if bar else TickProgress(tick_kimg)
