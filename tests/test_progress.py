"""Length in kimg (trainer.max_kimg) and progress: tick lines off a terminal, the kimg bar on one,
the progress/* metrics, ETA math and ETA after a resume."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import ProgressBar

from src.callbacks import progress
from src.callbacks.limits import Limits, StopAtIteration, limits_from_config, reached
from src.callbacks.progress import KimgProgressBar, ProgressClock, TickProgress, TickProgressBar, format_time
from src.sweeps.jobs import finished
from src.train import train
from src.utils.validation import ConfigError

# tests/conftest.py's TINY clears quickstart's max_kimg; max_steps is null by default (cleared anyway).
KIMG = ["trainer.max_steps=null"]
TICK = re.compile(
    r"^tick (\d+) +kimg (\d+\.\d+)(/\d+\.\d+)? +time (\S+( \S+)*?) +sec/tick (\d+\.\d) +"
    r"sec/kimg (\d+\.\d\d) +(eta \S+( \S+)*? +)?maxram (\d+\.\d\d) GB +gpumem (\d+\.\d\d) GB"
    r"( +augment (\d+\.\d{3}))?$"
)


def _state(log_dir: Path, name: str = "test") -> dict:
    return torch.load(log_dir / "quickstart" / name / "checkpoints" / "last.ckpt", weights_only=True)


def _ticks(text: str) -> list[re.Match]:
    return [TICK.match(line) for line in text.splitlines() if line.startswith("tick ")]


# ---------------------------------------------------------------------------------------------
# Length.


def test_max_kimg_stops_at_the_first_iteration_past_it(tiny_cfg, log_dir):
    # batch 4: 4, 8, 12 images -> the first iteration with cur_nimg >= 10 is the third
    train(tiny_cfg(*KIMG, "trainer.max_kimg=0.01"))
    state = _state(log_dir)
    assert state["gamut"]["iteration"] == 3 and state["gamut"]["cur_nimg"] == 12
    rd = log_dir / "quickstart" / "test"
    assert json.loads((rd / "done").read_text())["iteration"] == 3  # finished: a sweep would skip it
    assert _finished(tiny_cfg(*KIMG, "trainer.max_kimg=0.01"), rd) is not None
    assert _finished(tiny_cfg(*KIMG, "trainer.max_kimg=0.02"), rd) is None  # longer: not finished
    assert _finished(tiny_cfg("trainer.max_steps=3"), rd) is not None
    assert _finished(tiny_cfg("trainer.max_steps=4"), rd) is None


def _finished(cfg, run_dir):
    """A sweep's check before training: has the run in ``run_dir`` already reached ``cfg``'s length?"""
    return finished(run_dir, limits_from_config(cfg.trainer))


def test_resume_to_a_longer_max_kimg_continues(tiny_cfg, log_dir):
    train(tiny_cfg(*KIMG, "trainer.max_kimg=0.008"))
    with pytest.warns(UserWarning, match="Raise trainer.max_kimg"):
        train(tiny_cfg(*KIMG, "trainer.max_kimg=0.008", "ckpt_path=last"))
    assert _state(log_dir)["gamut"]["iteration"] == 2
    train(tiny_cfg(*KIMG, "trainer.max_kimg=0.016", "ckpt_path=last"))
    assert _state(log_dir)["gamut"]["cur_nimg"] == 16


def test_limits_helpers():
    assert limits_from_config({"max_steps": None, "max_kimg": None}).unlimited
    assert limits_from_config({"max_steps": -1, "max_kimg": None}).unlimited
    assert limits_from_config({"max_steps": 5}) == Limits(max_steps=5)
    assert limits_from_config({"max_steps": None, "max_kimg": 0.3}) == Limits(max_kimg=0.3)
    kimg = Limits(max_kimg=0.3)
    assert not reached(kimg, 10, 299) and reached(kimg, 10, 300)  # 0.3 * 1000 is 300.00000000000006
    steps = Limits(max_steps=3)
    assert not reached(steps, 2, 10**9) and reached(steps, 3, 0)
    assert not reached(Limits(), 10**9, 10**9)
    assert StopAtIteration(-1).limits.unlimited and StopAtIteration(7).max_iterations == 7


@pytest.mark.parametrize(
    "overrides,keys",
    [
        (["trainer.max_steps=0", "trainer.max_kimg=0"], ["trainer.max_steps", "trainer.max_kimg"]),
        (["trainer.max_steps=10", "trainer.max_kimg=0.5"], ["trainer.max_steps", "trainer.max_kimg"]),
        ([*KIMG, "trainer.max_kimg=-1"], ["trainer.max_kimg"]),
        ([*KIMG, "trainer.max_kimg=lots"], ["trainer.max_kimg"]),
        (["trainer.max_steps=-5"], ["trainer.max_steps"]),
        (["trainer.max_steps=-1", "trainer.max_kimg=-0.5"], ["trainer.max_kimg"]),
    ],
)
def test_bad_lengths_are_one_config_error(tiny_cfg, log_dir, overrides, keys):
    with pytest.raises(ConfigError) as err:
        train(tiny_cfg(*overrides))
    for key in keys:
        assert key in str(err.value)
    assert not (log_dir / "quickstart" / "test").exists()


def test_max_steps_minus_one_with_max_kimg_is_accepted(tiny_cfg, log_dir):
    train(tiny_cfg("trainer.max_steps=-1", "trainer.max_kimg=0.004"))
    assert _state(log_dir)["gamut"]["iteration"] == 1


# ---------------------------------------------------------------------------------------------
# Tick lines, bar, metrics.


def test_tick_lines_when_stdout_is_not_a_terminal(tiny_cfg, log_dir, capsys):
    # enable_progress_bar=true: Lightning would draw its bar; off a terminal the tick printer replaces it
    train(
        tiny_cfg(
            "trainer.max_steps=6",
            "trainer.enable_progress_bar=true",
            "callbacks.progress.tick_kimg=0.008",
            logger="csv",
        )
    )
    out, err = capsys.readouterr()
    assert "\r" not in out and "\r" not in err
    ticks = _ticks(out)
    assert all(ticks), [line for line in out.splitlines() if line.startswith("tick ")]
    # tick 0 after the first iteration (4 images), then every 8 images, and one at the end
    assert [int(m.group(1)) for m in ticks] == [0, 1, 2, 3]
    assert [m.group(2) for m in ticks] == ["0.004", "0.012", "0.020", "0.024"]
    assert {m.group(3) for m in ticks} == {"/0.024"}  # the total: max_steps x 4 images
    assert float(ticks[-1].group(10)) > 0  # maxram
    assert ticks[-1].group(11) == "0.00"  # gpumem on CPU
    assert "Epoch 0" not in out  # no Lightning bar


def test_tick_lines_show_the_augmentation_probability(tiny_cfg, log_dir, capsys):
    """As NVIDIA's tick line: ``augment`` with ADA's p when augmentation is on, nothing otherwise."""
    overrides = ["trainer.max_steps=3", "callbacks.progress.tick_kimg=0.008"]
    train(tiny_cfg(*overrides, "model.augment.mode=fixed", "model.augment.p=0.25", run_name="aug"))
    ticks = _ticks(capsys.readouterr().out)
    assert ticks and all(ticks) and {m.group(13) for m in ticks} == {"0.250"}
    train(tiny_cfg(*overrides, run_name="plain"))
    ticks = _ticks(capsys.readouterr().out)
    assert ticks and all(ticks) and {m.group(12) for m in ticks} == {None}


def test_tick_lines_without_a_length_and_with_the_bar_off(capsys):
    """enable_progress_bar=false gives a plain callback (Lightning shows no bar) that still prints ticks."""
    cb = progress.make_progress(tick_kimg=4, bar=False, tty=True)
    assert type(cb) is TickProgress and not isinstance(cb, ProgressBar)
    assert isinstance(progress.make_progress(bar=True, tty=False), TickProgressBar)
    assert isinstance(progress.make_progress(bar=True, tty=True), KimgProgressBar)
    t = [0.0]
    clock = ProgressClock(tick_kimg=4, clock=lambda: t[0])
    clock.start(0, 0)
    t[0], _ = 2.0, clock.update(64, 1)
    tick = clock.take_tick(1.5, 0.0)
    assert tick.eta is None and tick.total_kimg is None
    assert TICK.match(tick.line()), tick.line()
    assert tick.line().startswith("tick 0     kimg 0.1      time 2s")


def test_progress_metrics_are_logged(tiny_cfg, log_dir):
    metrics = train(tiny_cfg("trainer.max_steps=6", "callbacks.progress.tick_kimg=0.008", logger="csv"))
    keys = [
        "progress/sec_per_kimg",
        "progress/sec_per_tick",
        "progress/eta_s",
        "progress/peak_cpu_mem_gb",
        "progress/peak_gpu_mem_gb",
    ]
    for key in keys:
        assert key in metrics, key
    assert metrics["progress/sec_per_kimg"] > 0 and metrics["progress/peak_cpu_mem_gb"] > 0
    assert metrics["progress/peak_gpu_mem_gb"] == 0.0
    assert "progress/kimg" in metrics  # logged by the module
    rows = list(csv.DictReader(next((log_dir / "quickstart" / "test" / "csv").rglob("metrics.csv")).open()))
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16, 20, 24]  # the figures ride on the module's rows
    assert all(float(r["progress/sec_per_tick"]) > 0 for r in rows)


def test_kimg_bar_on_a_terminal(tiny_cfg, log_dir, capsys):
    train(tiny_cfg(*KIMG, "trainer.max_kimg=0.012", "trainer.enable_progress_bar=true", "callbacks.progress.tty=true"))
    out = capsys.readouterr().out
    assert "0.012/0.012 kimg" in out and "s/kimg=" in out and "eta=" in out
    assert not _ticks(out)


# ---------------------------------------------------------------------------------------------
# ETA math (fake clock) and resume.


def test_format_time():
    assert format_time(0) == "0s"
    assert format_time(59.4) == "59s"
    assert format_time(62) == "1m 02s"
    assert format_time(3 * 3600 + 4 * 60 + 5) == "3h 04m 05s"
    assert format_time(2 * 86400 + 3 * 3600 + 4 * 60 + 59) == "2d 03h 04m"


def test_eta_and_ticks_on_a_fake_clock():
    t = [100.0]
    clock = ProgressClock(tick_kimg=1, clock=lambda: t[0])
    clock.start(cur_nimg=0, iteration=0, limits=Limits(max_kimg=10))
    assert clock.eta() is None and not clock.tick_due()
    t[0], _ = 105.0, clock.update(500, 1)  # 500 images in 5 s: 10 s/kimg
    assert clock.tick_due()
    tick0 = clock.take_tick()
    assert (tick0.tick, tick0.kimg, tick0.time, tick0.sec_per_tick) == (0, 0.5, 5.0, 5.0)
    assert tick0.sec_per_kimg == pytest.approx(10.0)
    assert tick0.eta == pytest.approx(95.0)  # 9.5 kimg left at 10 s/kimg
    t[0], _ = 110.0, clock.update(1000, 2)
    assert not clock.tick_due()  # next tick at 1500 images
    t[0], _ = 125.0, clock.update(1500, 3)  # this tick: 1 kimg in 20 s; since start: 1.5 kimg in 25 s
    tick1 = clock.take_tick()
    assert (tick1.tick, tick1.sec_per_tick, tick1.sec_per_kimg) == (1, 20.0, 20.0)
    assert tick1.eta == pytest.approx(8.5 * 25 / 1.5)
    assert tick1.total_kimg == 10.0 and "kimg 1.5/10.0" in tick1.line()
    assert "eta 2m 22s" in tick1.line() and "time 25s" in tick1.line()


def test_eta_with_max_steps_uses_the_images_per_iteration():
    t = [0.0]
    clock = ProgressClock(clock=lambda: t[0])
    clock.start(0, 0, Limits(max_steps=100))
    t[0], _ = 10.0, clock.update(320, 10)  # 32 images per iteration, 1 s per iteration
    assert clock.total_nimg() == 3200
    assert clock.eta() == pytest.approx(90.0)


def test_eta_after_a_resume_uses_the_resumed_start():
    t = [1000.0]
    clock = ProgressClock(tick_kimg=4, clock=lambda: t[0])
    clock.start(cur_nimg=6000, iteration=600, limits=Limits(max_kimg=10))  # resumed at 6 kimg
    t[0], _ = 1010.0, clock.update(6400, 640)  # 0.4 kimg in 10 s since the resume
    tick = clock.take_tick()
    assert tick.tick == 0 and tick.time == 10.0
    assert tick.sec_per_kimg == pytest.approx(25.0)
    assert tick.eta == pytest.approx(3.6 * 25.0)  # not 3.6 kimg at 10 s / 6.4 kimg


def test_resumed_run_starts_its_clock_at_the_checkpoint(tiny_cfg, log_dir, capsys, monkeypatch):
    train(tiny_cfg(*KIMG, "trainer.max_kimg=0.012", "callbacks.progress.tick_kimg=0.004"))
    starts = []
    real_start = ProgressClock.start

    def start(self, cur_nimg, iteration, limits=None):
        starts.append((cur_nimg, iteration, limits))
        real_start(self, cur_nimg, iteration, limits)

    monkeypatch.setattr(ProgressClock, "start", start)
    capsys.readouterr()
    train(tiny_cfg(*KIMG, "trainer.max_kimg=0.02", "ckpt_path=last", "callbacks.progress.tick_kimg=0.004"))
    assert starts == [(12, 3, Limits(max_kimg=0.02))]
    ticks = _ticks(capsys.readouterr().out)
    assert [(int(m.group(1)), m.group(2)) for m in ticks] == [(0, "0.016"), (1, "0.020")]


def test_quickstart_counted_in_iterations_must_clear_its_kimg(log_dir):
    """quickstart sets trainer.max_kimg; trainer.max_steps on the command line alone is two lengths."""
    from src.utils.validation import validate
    from tests.conftest import compose_cfg

    with pytest.raises(ConfigError, match=r"trainer.max_steps=100 and trainer.max_kimg=.*trainer.max_kimg=null"):
        validate(compose_cfg(["experiment=quickstart", "trainer.max_steps=100", "logger=none"]))
    validate(compose_cfg(["experiment=quickstart", "trainer.max_kimg=null", "trainer.max_steps=100", "logger=none"]))


def test_peak_memory_without_getrusage(monkeypatch):
    """Linux: getrusage's KiB as bytes. Where there is no ``resource`` module (Windows), psutil's peak
    working set; where psutil has none either (this Linux, told there is no resource), None, and the
    progress line shows 0 instead of failing."""
    import resource
    import sys as _sys

    from src.callbacks.progress import peak_cpu_mem_gb
    from src.profiling.measure import peak_rss_bytes

    assert peak_rss_bytes() == resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    monkeypatch.setitem(_sys.modules, "resource", None)  # import resource -> ImportError
    assert peak_rss_bytes() is None and peak_cpu_mem_gb() == 0
