"""Shared fixtures: compose the real Hydra configs and shrink them for CPU tests."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torchvision
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import src.utils.resolvers  # noqa: F401
from src.pretrained.weights import OFFLINE_ENV, WEIGHTS
from tests.nvidia_standins import save_nvidia_vgg16, save_random_inception

CONF = str(Path(__file__).resolve().parents[1] / "src" / "conf")

# A StyleGAN2 small enough for a CPU step in well under a second.
TINY = [
    "experiment=quickstart",  # make train's experiment, shrunk below
    "data.resolution=16",
    "data.batch_size=4",
    "model.z_dim=16",
    "model.w_dim=16",
    "model.map_depth=1",
    "model.channel_base=128",
    "model.channel_max=16",
    "model.mbstd_group=2",
    "model.loss.pl_weight=2.0",  # the quickstart preset turns these off; tests run all four phases
    "model.loss.style_mixing_prob=0.9",
    "trainer.accelerator=cpu",
    "trainer.max_kimg=null",  # tests count iterations (trainer.max_steps)
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
]


# The network TINY configures, for tests that build a StyleGAN2 module directly.
TINY_MODULE = dict(resolution=16, z_dim=16, w_dim=16, map_depth=1, channel_base=128, channel_max=16, mbstd_group=2)


def compose_cfg(overrides: list[str] | None = None, config_name: str = "train.yaml"):
    """Compose ``src/conf/<config_name>`` with ``overrides`` (Hydra's compose API, fresh global state)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides or []))


@contextmanager
def logs_in(path: Path) -> Iterator[Path]:
    """``GAMUT_LOG_DIR=path`` (``paths.log_dir``) inside the block, the old value back after it.

    For module-scoped fixtures, which cannot use the function-scoped :func:`log_dir`.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GAMUT_LOG_DIR", str(path))
        yield path


def tiny_run(log_dir: Path, run_name: str, logger: str = "none", steps: int = 2) -> Path:
    """Train the :data:`TINY` StyleGAN2 for ``steps`` iterations under ``log_dir``; its run folder."""
    from src.train import train

    with logs_in(log_dir):
        train(compose_cfg([*TINY, f"logger={logger}", f"run_name={run_name}", f"trainer.max_steps={steps}"]))
    return log_dir / "quickstart" / run_name


@pytest.fixture
def log_dir(tmp_path) -> Iterator[Path]:
    """A fresh ``paths.log_dir`` for the test (through ``GAMUT_LOG_DIR``)."""
    with logs_in(tmp_path / "logs") as d:
        yield d


@pytest.fixture
def tiny_cfg(log_dir):
    """Factory: a composed tiny training config writing under a temporary log dir."""

    def make(*overrides: str, logger: str = "none", run_name: str = "test"):
        return compose_cfg([*TINY, f"logger={logger}", f"run_name={run_name}", *overrides])

    return make


@pytest.fixture(scope="session", autouse=True)
def _no_weight_downloads() -> Iterator[None]:
    """No test fetches pretrained files from the internet: ``GAMUT_OFFLINE=1`` for the whole session
    (before any module-scoped fixture runs; subprocesses inherit it). A test that exercises the download
    path opts in with ``monkeypatch.delenv(OFFLINE_ENV)`` and serves its file on 127.0.0.1."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(OFFLINE_ENV, "1")
        yield


@pytest.fixture(autouse=True)
def _torch_threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """Random-init Inception (torch-fidelity's architecture), torchvision's VGG-16 and a stand-in for
    NVIDIA's TorchScript vgg16.pt (tests/nvidia_standins.py) under the upstream names."""
    d = tmp_path_factory.mktemp("weights")
    save_random_inception(d / WEIGHTS["inception"].filename)  # seeds 0; the VGG-16 draws after it, as before
    vgg = torchvision.models.vgg16(weights=None)  # LPIPS reads the features.*, precision/recall all of it
    torch.save(vgg.state_dict(), d / WEIGHTS["vgg16"].filename)
    with warnings.catch_warnings():  # torch marks TorchScript deprecated; NVIDIA's file is TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        save_nvidia_vgg16(d / WEIGHTS["vgg16_nvidia"].filename)
    return d
