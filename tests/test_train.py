"""End-to-end training on CPU through the real configs: fit, outputs, exact resume, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.train import train
from src.utils.validation import ConfigError
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def run_dir(log_dir: Path, run_name: str, task: str = "quickstart") -> Path:
    return log_dir / task / run_name


def test_fit_writes_the_run_folder(tiny_cfg, log_dir):
    cfg = tiny_cfg("trainer.max_steps=6", "callbacks.sample_grid.every_kimg=0.008", logger="csv")
    metrics = train(cfg)
    rd = run_dir(log_dir, "test")
    ckpt = rd / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    state = torch.load(ckpt, weights_only=True)  # loadable without unpickling code
    assert state["gamut"]["iteration"] == 6 and state["gamut"]["cur_nimg"] == 24
    assert {"G.synthesis.blocks.0.const", "G_ema.mapping.w_avg", "pl_mean"} <= set(state["state_dict"])
    assert len(state["optimizer_states"]) == 2
    assert (rd / "samples" / "reals.png").is_file()
    assert len(list((rd / "samples").glob("fakes_kimg*.png"))) >= 2
    assert (rd / ".hydra" / "config.yaml").is_file() and (rd / "train.log").is_file()
    for key in ("Loss/G", "Loss/D", "Loss/r1", "Loss/pl", "pl_mean", "D/real", "D/fake", "progress/kimg"):
        assert key in metrics and metrics[key] == metrics[key]  # present and not NaN
    assert metrics["progress/kimg"] == pytest.approx(0.024)
    # the loggers' step axis is images seen: 4 images per iteration, logged every iteration
    import csv

    rows = list(csv.DictReader(next((rd / "csv").rglob("metrics.csv")).open()))
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16, 20, 24]
    # no stray Lightning checkpoints outside checkpoints/
    assert [p for p in rd.rglob("*.ckpt") if p.parent.name != "checkpoints"] == []


def test_max_steps_counts_iterations(tiny_cfg, log_dir):
    train(tiny_cfg("trainer.max_steps=3", "model.loss.r1_interval=1", "model.loss.pl_interval=1"))
    state = torch.load(run_dir(log_dir, "test") / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["iteration"] == 3
    assert state["global_step"] == 12  # Lightning counted 4 optimizer steps per iteration


def _final_state(log_dir: Path, name: str) -> dict:
    return torch.load(run_dir(log_dir, name) / "checkpoints" / "last.ckpt", weights_only=True)


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["gamut"]["iteration"] == b["gamut"]["iteration"]
    assert a["gamut"]["cur_nimg"] == b["gamut"]["cur_nimg"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"]):
        for pid, sa in oa["state"].items():
            for name, t in sa.items():
                assert torch.equal(t, ob["state"][pid][name]), (pid, name)
    assert torch.equal(a["gamut"]["rng"]["torch"], b["gamut"]["rng"]["torch"])


def test_resume_is_bit_exact(tiny_cfg, log_dir):
    """N steps + resume N steps == 2N steps (fp32, CPU), with R1 and path length in both halves."""
    common = ["model.loss.r1_interval=4", "model.loss.pl_interval=3", "callbacks.sample_grid.every_kimg=0.008"]
    train(tiny_cfg("trainer.max_steps=10", *common, run_name="straight"))
    train(tiny_cfg("trainer.max_steps=5", *common, run_name="split"))
    half = _final_state(log_dir, "split")
    assert half["gamut"]["iteration"] == 5
    train(tiny_cfg("trainer.max_steps=10", "ckpt_path=last", *common, run_name="split"))
    _assert_same_state(_final_state(log_dir, "straight"), _final_state(log_dir, "split"))
    # and the resumed run really did continue rather than restart
    assert not torch.equal(
        half["state_dict"]["G.mapping.layers.0.weight"],
        _final_state(log_dir, "split")["state_dict"]["G.mapping.layers.0.weight"],
    )


def test_resume_of_a_finished_run_trains_no_further(tiny_cfg, log_dir):
    train(tiny_cfg("trainer.max_steps=2"))
    before = _final_state(log_dir, "test")
    with pytest.warns(UserWarning, match="Raise trainer.max_steps"):
        train(tiny_cfg("trainer.max_steps=2", "ckpt_path=last"))
    _assert_same_state(before, _final_state(log_dir, "test"))


def test_fresh_launch_never_overwrites_a_run(tiny_cfg, log_dir):
    train(tiny_cfg("trainer.max_steps=1"))
    ckpt = run_dir(log_dir, "test") / "checkpoints" / "last.ckpt"
    before = ckpt.read_bytes()
    with pytest.raises(ConfigError, match="ckpt_path=last"):
        train(tiny_cfg("trainer.max_steps=1"))
    assert ckpt.read_bytes() == before


@pytest.mark.parametrize(
    "override,key",
    [
        ("data.resolution=30", "data.resolution"),
        ("data.resolution=[18,24]", "data.resolution"),
        ("data.batch_size=1", "data.batch_size"),
        ("data.batch_size=3", "model.mbstd_group"),
        ("+model.img_channels=4", "model.img_channels"),  # a key of older configs: must still agree
        ("colorspace.channels=1", "colorspace.channels"),
        ("ckpt_path=/no/such/file.ckpt", "ckpt_path"),
        ("model.loss.r1_gama=1", "model.loss.r1_gama"),
        ("trainer.max_steps=-5", "trainer.max_steps"),
        ("model.num_classes=3", "model.num_classes"),
        ("model.channel_base=8", "model.channel_base"),
        ("model.perf.compile=yes_please", "model.perf.compile"),
        ("cpu_malloc_cache=1", "cpu_malloc_cache"),
    ],
)
def test_bad_config_stops_before_writing(tiny_cfg, log_dir, override, key):
    cfg = tiny_cfg(override) if not override.startswith("model.loss.r1_gama") else tiny_cfg("+" + override)
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert key in str(err.value)
    assert not run_dir(log_dir, "test").exists()


def test_missing_data_root_is_one_clear_error(log_dir):
    from tests.conftest import TINY, compose_cfg

    overrides = [o for o in TINY if not o.startswith("data.dataset.")]
    with pytest.raises(ConfigError, match="data.root is required"):
        train(compose_cfg([*overrides, "data=folder", "logger=none", "run_name=test"]))
    assert not run_dir(log_dir, "test").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path):
    env = {**os.environ, "GAMUT_LOG_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "src.train", "data.resolution=36", "logger=none", "run_name=x"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "data.resolution=36" in proc.stderr and "Nearest valid: 32, 40, 28" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "quickstart" / "x").exists()


def test_non_square_gray_training(tiny_cfg, log_dir):
    train(tiny_cfg("trainer.max_steps=2", "data.resolution=[16,32]", "colorspace=gray"))
    state = _final_state(log_dir, "test")
    assert state["state_dict"]["G.synthesis.blocks.0.const"].shape[1:] == (4, 8)
    assert state["state_dict"]["G.synthesis.blocks.0.torgb.weight"].shape[0] == 1


def test_conditional_training_on_shape_labels(tiny_cfg, log_dir):
    train(tiny_cfg("trainer.max_steps=2", "model.num_classes=6"))
    sd = _final_state(log_dir, "test")["state_dict"]
    assert sd["G.mapping.embed.weight"].shape == (16, 6)  # label embedding to w_dim
    assert "D.mapping.layers.0.weight" in sd  # projection discriminator


def test_nonfinite_loss_is_reported(tiny_cfg):
    with pytest.raises(FloatingPointError, match="non-finite"):
        train(
            tiny_cfg(
                "trainer.max_steps=4", "model.check_finite_every=1", "model.optim.g_lr=1e30", "model.optim.d_lr=1e30"
            )
        )


@pytest.mark.parametrize("colorspace", ["rgb", "gray", "rgba", "hsv", "hsv_polar", "lab", "ycbcr"])
def test_short_fit_in_every_colorspace(tiny_cfg, log_dir, colorspace):
    """StyleGAN2 trains in each color space; grids are decoded to RGB(A) for people to look at."""
    from PIL import Image

    train(
        tiny_cfg(
            "trainer.max_steps=2",
            f"colorspace={colorspace}",
            "data.resolution=[8,16]",
            "callbacks.sample_grid.every_kimg=0.004",
        )
    )
    rd = run_dir(log_dir, "test")
    channels = {"gray": 1, "rgba": 4}.get(colorspace, 3)
    sd = _final_state(log_dir, "test")["state_dict"]
    assert sd["G.synthesis.blocks.0.torgb.weight"].shape[0] == channels
    for png in [rd / "samples" / "reals.png", *sorted((rd / "samples").glob("fakes_*.png"))]:
        with Image.open(png) as im:
            assert im.mode == ("RGBA" if colorspace == "rgba" else "RGB")


def test_prefer_named_length_unsets_the_length_not_named():
    from omegaconf import OmegaConf

    from src.callbacks.limits import prefer_named_length

    def cfg(steps, kimg):
        return OmegaConf.create({"trainer": {"max_steps": steps, "max_kimg": kimg}})

    c = cfg(4, 20)
    assert "replaces trainer.max_kimg=20" in prefer_named_length(c, ["trainer.max_steps=4"])
    assert c.trainer.max_kimg is None and c.trainer.max_steps == 4
    c = cfg(None, 0.5)  # a resume: the first launch named max_steps, this one max_kimg
    assert prefer_named_length(c, ["trainer.max_kimg=0.5"], ["trainer.max_steps=4"]) is None  # nothing to unset
    c = cfg(4, 0.5)
    prefer_named_length(c, ["trainer.max_kimg=0.5"], ["trainer.max_steps=4"])
    assert c.trainer.max_steps is None and c.trainer.max_kimg == 0.5  # today's wins
    c = cfg(4, 20)  # a resume naming no length keeps the first launch's choice
    prefer_named_length(c, ["ckpt_path=last"], ["trainer.max_steps=4"])
    assert c.trainer.max_kimg is None
    for both in (["trainer.max_steps=4", "trainer.max_kimg=1"], []):
        c = cfg(4, 20)
        assert prefer_named_length(c, both) is None and c.trainer.max_kimg == 20  # validation decides


@pytest.mark.slow
def test_a_length_named_on_the_command_line_replaces_the_experiments(log_dir):
    """``experiment=quickstart trainer.max_steps=2`` (the experiment sets trainer.max_kimg=20) trains 2
    iterations; its resume with trainer.max_kimg=0.016 trains to 16 images; both named is refused."""
    tiny = [o for o in TINY if o != "trainer.max_kimg=null"]
    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir)}

    def launch(*overrides: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "src.train", *tiny, "logger=none", *overrides]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)

    first = launch("run_name=named", "trainer.max_steps=2")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "trainer.max_steps given on the command line replaces trainer.max_kimg=20" in first.stdout + first.stderr
    assert _final_state(log_dir, "named")["gamut"]["iteration"] == 2
    resumed = launch("run_name=named", "ckpt_path=last", "trainer.max_kimg=0.016")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _final_state(log_dir, "named")["gamut"]["iteration"] == 4  # 16 images of batch 4
    both = launch("run_name=both", "trainer.max_steps=2", "trainer.max_kimg=1")
    assert both.returncode == 2 and "are both set" in both.stderr
