"""2-process DDP on CPU (gloo) through the real CLI: ranks stay identical and match one process.

StyleGAN2 with R1 and path length both active in the steps run (intervals 2 and 3, so lazy and
non-lazy iterations mix). Noise inputs are off: per-layer noise is drawn per rank, everything else
(latents, mixing, path-length noise) is drawn for the global batch (module docstring).
Adam's eps is 1e-3 here: with the default 1e-8, a gradient element of size ~eps turns the float32
rounding difference between "mean of 2 rank means" and "mean of 8" into a step difference of up to
~1e-4 in that one element (measured: 9.9e-5 in one D weight, every other element < 6e-7); with
eps=1e-3 the largest difference after 4 iterations is 2.4e-7.
To add a family, add a parametrize entry (its tiny overrides and the parameter prefixes to compare).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from src.train import train
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
STEPS = 4


class DumpRankState(Callback):
    """Test helper: each rank writes its module state to ``<dirpath>/rank<r>.pt`` at the end."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        torch.save(state, self.dirpath / f"rank{trainer.global_rank}.pt")


def run_two_ranks(overrides: list[str], dump: Path, log_dir: Path, logger: str = "none") -> tuple[dict, dict]:
    """``python -m src.train overrides trainer=ddp`` with 2 CPU processes; returns both ranks' final states."""
    cmd = [sys.executable, "-m", "src.train", *overrides, "trainer=ddp", "trainer.accelerator=cpu",
           "trainer.devices=2", f"logger={logger}", "run_name=ddp",
           "+callbacks.dump._target_=tests.test_ddp.DumpRankState", f"+callbacks.dump.dirpath={dump}"]
    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return torch.load(dump / "rank0.pt", weights_only=True), torch.load(dump / "rank1.pt", weights_only=True)


FAMILIES = {
    "stylegan2": ["model.use_noise=false", "model.loss.r1_interval=2", "model.loss.pl_interval=3",
                  "model.loss.pl_batch_shrink=2", "model.mbstd_group=2",
                  "model.loss.r1_gamma=1.0", "model.ema.kimg=0.01", "model.ema.rampup=null",
                  "model.optim.eps=1e-3"],  # Adam eps >> rounding of near-zero grads (see docstring)
}


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_ddp_two_processes_match_one_process(family, tmp_path, log_dir):
    extra = FAMILIES[family]
    common = [*[o for o in TINY if not o.startswith("data.batch_size")], *extra, f"trainer.max_steps={STEPS}",
              "callbacks.sample_grid.every_kimg=1", "callbacks.checkpoint.every_kimg=1"]
    r0, r1 = run_two_ranks([*common, "data.batch_size=4"], tmp_path / "ranks", log_dir, logger="csv")
    trained = [k for k in r0 if k.startswith(("G.", "D.", "G_ema.")) and r0[k].is_floating_point()]
    for k in trained + ["pl_mean"]:
        if k.endswith("w_avg"):
            continue  # a running mean of each rank's own w; DDP broadcasts rank 0's every step
        assert torch.equal(r0[k], r1[k]), f"ranks differ in {k}"

    # one run folder for both ranks (Hydra's run dir is shared, no per-rank folders), rank 0 writes
    rd = log_dir / "quickstart" / "ddp"
    assert sorted(p.name for p in (log_dir / "quickstart").iterdir()) == ["ddp"]
    ddp_state = torch.load(rd / "checkpoints" / "last.ckpt", weights_only=True)
    assert ddp_state["gamut"]["cur_nimg"] == 8 * STEPS and ddp_state["gamut"]["iteration"] == STEPS

    # one process, same global batch
    train(__import__("tests.conftest", fromlist=["compose_cfg"]).compose_cfg(
        [*common, "data.batch_size=8", "logger=none", "run_name=single"]))
    single = torch.load(log_dir / "quickstart" / "single" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    diffs = {k: (single[k] - r0[k]).abs().max().item() for k in trained + ["pl_mean"] if not k.endswith("w_avg")}
    worst = max(diffs.values())
    print(f"max |param(DDP 2x4) - param(1x8)| after {STEPS} iterations: {worst:.3g}")
    assert worst < 1e-5
    assert single["pl_mean"] != 0  # path length ran


@pytest.mark.slow
def test_ddp_chromagan_gradient_penalty_keeps_ranks_identical(tmp_path, log_dir):
    """ChromaGAN on 2 CPU processes (WGAN-GP double backward, KL to the teacher): G and D stay
    bit-identical across ranks, i.e. every phase's gradients are synced.

    Equality with one process at the same global batch is not asserted here: G's BatchNorm uses
    per-rank batch statistics on CPU, since PyTorch's SyncBatchNorm (which ``trainer=ddp`` turns on
    for GPUs) exists for GPUs only.
    """
    from tests.test_chromagan import TINY_CHROMA
    from tests.test_tinyimagenet import make_tiny_imagenet

    import torchvision

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), weights / "vgg16-397923af.pth")
    root = make_tiny_imagenet(tmp_path, per_class=4)
    common = ["experiment=chromagan_tinyimagenet", f"data.root={root}", f"paths.weights_dir={weights}",
              "model.num_classes=3", "model.trunk_pretrained=false",
              *[o for o in TINY_CHROMA if not o.startswith(("data.batch_size", "trainer.val_check_interval"))],
              "trainer.limit_val_batches=0", f"trainer.max_steps={STEPS}"]
    r0, r1 = run_two_ranks([*common, "data.batch_size=2"], tmp_path / "ranks", log_dir)
    # parameters only: BatchNorm running statistics are per rank between forwards (DDP broadcasts
    # rank 0's at the start of each forward; checkpoints come from rank 0)
    trained = [k for k in r0 if k.startswith(("G.", "D.")) and r0[k].is_floating_point()
               and not k.endswith(("running_mean", "running_var"))]
    assert trained
    for k in trained:
        assert torch.equal(r0[k], r1[k]), f"ranks differ in {k}"
    state = torch.load(log_dir / "chromagan_tinyimagenet" / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["cur_nimg"] == 4 * STEPS and state["gamut"]["iteration"] == STEPS
