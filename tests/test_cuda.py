"""CUDA runs (marker ``gpu``): skipped where no CUDA GPU is present, so CI (CPU only) skips them all.

Run them on a machine with a GPU:

    .venv/bin/python -m pytest -q -m gpu            # or: make test-gpu

- every family trains a few steps on CUDA in ``32-true``, ``bf16-mixed`` and ``16-mixed`` with finite
  losses, and under ``16-mixed`` the fp16 recipe is active (G's top block in fp16, its 4x4 block and the
  image sum in float32);
- exact resume on CUDA in fp32 with ``trainer.deterministic=true`` (deterministic kernels; cuBLAS needs
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, which the test sets before CUDA starts);
- ``model.perf.compile=true`` and ``model.perf.channels_last=true`` train to the eager result within
  tolerance;
- ``scripts/benchmark.py`` reports the peak GPU memory.
"""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from src.train import train
from tests.conftest import TINY, compose_cfg
from tests.test_train import _final_state

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run with -m gpu on one)"),
]

GPU = [o for o in TINY if not o.startswith("trainer.accelerator")] + ["trainer=gpu", "trainer.max_kimg=null"]
SEGAN = ["model=segan", "model.mode=2", "model.subspace.variant=eigen", "model.subspace.coords=sampled"]


class BlockDtypes(Callback):
    """Records the dtype of each synthesis block's output during training to ``<dirpath>/dtypes.json``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath, self.seen, self.hooks = dirpath, {}, []

    def on_train_start(self, trainer, pl_module) -> None:
        for i, block in enumerate(pl_module.G.synthesis.blocks):
            self.hooks.append(
                block.register_forward_hook(
                    lambda m, a, out, i=i: self.seen.setdefault(i, set()).add(str(out[0].dtype))
                )
            )

    def on_train_end(self, trainer, pl_module) -> None:
        for h in self.hooks:
            h.remove()
        os.makedirs(self.dirpath, exist_ok=True)
        with open(os.path.join(self.dirpath, "dtypes.json"), "w") as f:
            json.dump({str(k): sorted(v) for k, v in self.seen.items()}, f)


def _finite(metrics: dict) -> bool:
    losses = {k: float(v) for k, v in metrics.items() if k.startswith("Loss/")}
    return bool(losses) and all(math.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("family", ["stylegan2", "segan"])
def test_stylegan_families_train_on_cuda(family, precision, log_dir, tmp_path):
    probe = tmp_path / "probe"
    cfg = compose_cfg(
        [
            *GPU,
            *(SEGAN if family == "segan" else []),
            "data.resolution=32",
            f"trainer.precision={precision}",
            "trainer.max_steps=4",
            "model.loss.r1_interval=2",
            "model.loss.pl_interval=2",
            "logger=none",
            "run_name=cuda",
            "+callbacks.probe._target_=tests.test_cuda.BlockDtypes",
            f"+callbacks.probe.dirpath={probe}",
        ]
    )
    metrics = train(cfg)
    assert _finite(metrics)
    dtypes = json.loads((probe / "dtypes.json").read_text())
    if precision == "16-mixed":
        assert cfg.model.conv_clamp == 256
        assert dtypes["0"] == ["torch.float32"]  # the 4x4 block stays float32
        assert "torch.float16" in dtypes[str(len(dtypes) - 1)]  # the top block runs in fp16
    elif precision == "32-true":
        assert all(v == ["torch.float32"] for v in dtypes.values())
    print(f"{family} {precision}: peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_chromagan_trains_on_cuda(precision, log_dir, tmp_path):
    import torchvision

    from tests.test_chromagan import TINY_CHROMA
    from tests.test_tinyimagenet import make_tiny_imagenet

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), weights / "vgg16-397923af.pth")
    overrides = [o for o in TINY_CHROMA if not o.startswith("trainer.accelerator")]
    cfg = compose_cfg(
        [
            "experiment=chromagan_tinyimagenet",
            f"data.root={make_tiny_imagenet(tmp_path, per_class=4)}",
            f"paths.weights_dir={weights}",
            "model.num_classes=3",
            "model.trunk_pretrained=false",
            *overrides,
            "trainer=gpu",
            f"trainer.precision={precision}",
            "trainer.max_steps=3",
            "logger=none",
            "run_name=cuda",
        ]
    )
    assert _finite(train(cfg))


def test_exact_resume_on_cuda_in_fp32(log_dir, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    common = [*GPU, "trainer.deterministic=true", "model.loss.r1_interval=4", "model.loss.pl_interval=3", "logger=none"]
    train(compose_cfg([*common, "trainer.max_steps=6", "run_name=straight"]))
    train(compose_cfg([*common, "trainer.max_steps=3", "run_name=split"]))
    train(compose_cfg([*common, "trainer.max_steps=6", "ckpt_path=last", "run_name=split"]))
    a, b = _final_state(log_dir, "straight"), _final_state(log_dir, "split")
    assert a["gamut"]["iteration"] == b["gamut"]["iteration"] == 6
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k


@pytest.mark.parametrize("perf", [["model.perf.channels_last=true"], ["model.perf.compile=true"]])
def test_speed_options_train_like_eager_on_cuda(perf, log_dir):
    common = [*GPU, "model.use_noise=false", "trainer.max_steps=3", "logger=none"]
    train(compose_cfg([*common, "run_name=eager"]))
    train(compose_cfg([*common, *perf, "run_name=fast"]))
    a, b = _final_state(log_dir, "eager")["state_dict"], _final_state(log_dir, "fast")["state_dict"]
    worst = max(((a[k] - b[k]).abs() / (1 + a[k].abs())).max().item() for k in a if a[k].is_floating_point())
    print(f"{perf[0]}: max relative parameter difference to eager after 3 iterations {worst:.3g}")
    assert worst < 1e-3  # TF32 / kernel choice differ between the paths; the function is the same


def test_benchmark_reports_peak_gpu_memory():
    from src.tools import benchmark

    out = benchmark.main(["stylegan2", "device=cuda", "resolution=32", "batch=8", "steps=2", "warmup=1"])
    assert out["peak_memory_mb"] > 0 and out["sec_per_iteration"] > 0
