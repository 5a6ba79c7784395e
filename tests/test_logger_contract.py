"""The logger contract (src/loggers/extras.py): every logger src/conf/logger/*.yaml builds is a ``RunLogger``;
images, run info and checkpoints reach gamut's loggers through it, and foreign loggers are skipped."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pytest
from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger

from src.callbacks.checkpoint import KimgCheckpoint, cluster_environment
from src.loggers.extras import CheckpointSaver, RunLogger, SavedCheckpoint, run_loggers
from src.loggers.images import log_image
from src.loggers.lightning import CSVLogger, TensorBoardLogger
from tests.conftest import CONF, compose_cfg

LOGGER_CONFIGS = sorted(p.stem for p in (Path(CONF) / "logger").glob("*.yaml"))


def test_every_logger_config_is_listed():
    assert {"csv", "mlflow", "neptune", "tensorboard", "many", "none"} <= set(LOGGER_CONFIGS)


@pytest.mark.parametrize("name", LOGGER_CONFIGS)
def test_every_logger_config_builds_a_run_logger(name, log_dir, monkeypatch):
    monkeypatch.setenv("NEPTUNE_MODE", "debug")
    cfg = compose_cfg([f"logger={name}", "run_name=contract"])
    built = [hydra.utils.instantiate(node) for node in (cfg.logger or {}).values()]
    assert len(built) == {"none": 0, "many": 3}.get(name, 1)
    for logger in built:
        assert isinstance(logger, RunLogger), f"src/conf/logger/{name}.yaml builds {type(logger).__name__}"


class Recording(RunLogger):
    """A RunLogger that records what reaches its extras."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> str:
        return "0"

    def log_metrics(self, metrics, step=None) -> None:
        self.calls.append(("metrics", dict(metrics), step))

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_image(self, key, image, step) -> None:
        self.calls.append(("image", key, image.shape, step))

    def log_checkpoint(self, path, kimg) -> None:
        self.calls.append(("checkpoint", path, kimg))


def test_images_go_to_run_loggers_and_foreign_loggers_are_skipped(tmp_path):
    recording, foreign = Recording(), LightningCSVLogger(tmp_path)
    assert run_loggers([foreign, recording, None]) == [recording]
    log_image([foreign, recording], "samples/fakes", np.zeros((8, 8, 3), np.uint8), step=12)
    assert recording.calls == [("image", "samples/fakes", (8, 8, 3), 12)]


def test_tensorboard_shows_images_and_csv_ignores_them(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = TensorBoardLogger(tmp_path, name="tensorboard", version="")
    csv = CSVLogger(tmp_path, name="csv", version="v")
    log_image([tb, csv], "samples/fakes", np.full((8, 8, 3), 200, np.uint8), step=12)
    tb.finalize("success")
    csv.finalize("success")
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert [e.step for e in events.Images("samples/fakes")] == [12]
    assert not (tmp_path / "csv" / "v" / "metrics.csv").exists()


def test_checkpoints_reach_run_loggers_through_lightnings_hook():
    recording = Recording()

    class Saver(CheckpointSaver):
        saved = (SavedCheckpoint("ckpts/kimg000008.000.ckpt", 0.008), SavedCheckpoint("ckpts/last.ckpt", 0.008))

    recording.after_save_checkpoint(Saver())
    assert recording.calls == [
        ("checkpoint", "ckpts/kimg000008.000.ckpt", 0.008),
        ("checkpoint", "ckpts/last.ckpt", 0.008),
    ]
    recording.after_save_checkpoint(object())  # another callback: Lightning's own (no-op) hook
    assert len(recording.calls) == 2
    assert issubclass(KimgCheckpoint, CheckpointSaver)


def test_run_info_defaults_to_nothing(tmp_path):
    csv = CSVLogger(tmp_path, name="csv", version="v")
    csv.set_run_info("run", {"task": "t"})  # CSV has no dashboard name: a no-op, not an error
    csv.log_checkpoint("last.ckpt", 1.0)


def test_the_cluster_environment_comes_from_public_api(monkeypatch):
    import pytorch_lightning as pl
    from pytorch_lightning.plugins.environments import SLURMEnvironment

    for key in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "LOCAL_RANK", "GROUP_RANK"):
        monkeypatch.delenv(key, raising=False)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False)
    assert cluster_environment(trainer) is None
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "gamut")
    env = cluster_environment(trainer)
    assert isinstance(env, SLURMEnvironment) and env.auto_requeue
