"""Every config composes and instantiates; what the user names wins; presets reproduce stylegan2-ada-pytorch's."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from src.utils.resolvers import auto_preset
from tests.conftest import CONF, compose_cfg

GROUPS = {
    g: sorted(p.stem for p in (Path(CONF) / g).glob("*.yaml"))
    for g in ("model", "data", "colorspace", "trainer", "logger", "callbacks", "preset", "experiment", "debug")
}


def test_contract_groups_exist():
    assert {"stylegan2"} <= set(GROUPS["model"])
    assert {"shapes"} <= set(GROUPS["data"])
    assert set(GROUPS["colorspace"]) == {"rgb", "gray", "rgba", "hsv", "hsv_polar", "lab", "ycbcr"}
    assert {"mlflow", "csv", "none"} <= set(GROUPS["logger"])
    assert {"default", "cpu", "gpu", "ddp"} <= set(GROUPS["trainer"])
    assert {"auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar"} <= set(GROUPS["preset"])
    assert "quickstart" in GROUPS["experiment"]


def test_no_experiment_by_default_and_stable_run_dir(log_dir):
    """`python -m src.train` alone: StyleGAN2 with the auto preset on the shapes data, task `train`."""
    cfg = compose_cfg(["run_name=abc"])
    assert cfg.task_name == "train"
    assert cfg.paths.run_dir == f"{log_dir}/train/abc"
    assert cfg.paths.mlflow_uri == f"sqlite:///{log_dir}/mlflow.db"
    assert cfg.trainer.accelerator == "auto"
    assert cfg.model.channel_base == auto_preset("channel_base", cfg.data.resolution)
    assert cfg.data.batch_size == auto_preset("batch", cfg.data.resolution)


@pytest.mark.parametrize(
    "overrides,expect",
    [
        # the commands of the issue that once composed to the CPU demo
        (
            ["data=ffhq", "data.root=/x", "trainer=gpu"],
            {
                "trainer.accelerator": "gpu",
                "task_name": "train",
                "data.root": "/x",
                "model.channel_max": 512,
                "data.dataset._target_": "src.datamodules.readers.ImageFolderDataset",
            },
        ),
        (
            ["preset=paper256", "trainer=gpu"],
            {"trainer.accelerator": "gpu", "model.channel_base": 16384, "model.map_depth": 8, "data.batch_size": 64},
        ),
        (
            ["trainer=ddp", "trainer.devices=8"],
            {"trainer.accelerator": "gpu", "trainer.devices": 8, "trainer.strategy": "ddp"},
        ),
        # an experiment's group choices give way to the groups named on the command line
        (["experiment=quickstart", "trainer=gpu"], {"trainer.accelerator": "gpu", "task_name": "quickstart"}),
        (
            ["experiment=quickstart", "data=folder", "data.root=/x"],
            {"data.root": "/x", "model.channel_base": 512, "task_name": "quickstart"},
        ),
        (["experiment=quickstart"], {"trainer.accelerator": "cpu", "model.channel_base": 512}),
    ],
)
def test_what_the_user_names_wins(log_dir, overrides, expect):
    cfg = compose_cfg([*overrides, "run_name=t"])
    for key, value in expect.items():
        assert OmegaConf.select(cfg, key) == value, key


def test_chromagan_takes_no_preset(log_dir):
    cfg = compose_cfg(["model=chromagan", "colorspace=lab", "run_name=t"])
    assert not {"channel_base", "map_depth", "mbstd_group"} & set(cfg.model)
    assert cfg.data.batch_size == 16  # the data config's own, no preset formula
    # ... while StyleGAN2 and SEGAN get the auto preset when none is named
    for model in ("stylegan2", "segan"):
        cfg = compose_cfg([f"model={model}", "run_name=t"])
        assert cfg.model.channel_base == auto_preset("channel_base", cfg.data.resolution), model


@pytest.mark.parametrize(
    "group,name",
    [(g, n) for g in ("colorspace", "trainer", "logger", "preset", "experiment", "debug") for n in GROUPS[g]],
)
def test_every_config_composes(group, name, log_dir):
    cfg = compose_cfg([f"{group}={name}", "run_name=t"])
    OmegaConf.resolve(cfg)  # every interpolation resolves
    assert cfg.model.colorspace == cfg.colorspace.name  # the model's channels follow the color space
    if cfg.model._target_.endswith("ChromaGAN"):  # ChromaGAN predicts ab from L: it trains in Lab only
        assert cfg.colorspace.name == "lab"


@pytest.mark.parametrize("colorspace", GROUPS["colorspace"])
def test_model_and_data_instantiate_for_every_colorspace(colorspace, log_dir):
    from tests.conftest import TINY

    cfg = compose_cfg([*TINY, f"colorspace={colorspace}", "run_name=t"])
    model = hydra.utils.instantiate(cfg.model)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    assert model.G.img_channels == dm.img_channels == cfg.colorspace.channels
    assert tuple(model.resolution) == dm.resolution


@pytest.mark.parametrize("logger", ["mlflow", "csv"])
def test_loggers_instantiate(logger, log_dir):
    cfg = compose_cfg([f"logger={logger}", "run_name=t"])
    built = [hydra.utils.instantiate(c) for c in cfg.logger.values()]
    assert len(built) == 1


def test_logger_lists_and_none(log_dir):
    assert set(compose_cfg(["logger=[mlflow,csv]"]).logger) == {"mlflow", "csv"}
    assert not compose_cfg(["logger=none"]).logger


def test_trainer_and_callbacks_instantiate(log_dir):
    cfg = compose_cfg(["trainer=cpu", "run_name=t"])
    from src.callbacks.limits import lightning_trainer_config

    trainer = hydra.utils.instantiate(lightning_trainer_config(cfg.trainer), max_steps=-1, logger=False)
    assert trainer.max_steps == -1
    for c in cfg.callbacks.values():
        hydra.utils.instantiate(c)


def test_unknown_key_is_refused(log_dir):
    with pytest.raises(ConfigCompositionException, match="model.no_such_key"):
        compose_cfg(["model.no_such_key=1"])


@pytest.mark.parametrize(
    "preset,batch,group,base,lr,gamma,ema,ramp,depth",
    [
        ("stylegan2", 32, 4, 32768, 0.002, 10, 10, None, 8),
        ("paper256", 64, 8, 16384, 0.0025, 1, 20, None, 8),
        ("paper512", 64, 8, 32768, 0.0025, 0.5, 20, None, 8),
        ("paper1024", 32, 4, 32768, 0.002, 2, 10, None, 8),
        ("cifar", 64, 32, 32768, 0.0025, 0.01, 500, 0.05, 2),
    ],
)
def test_presets_match_the_reference_table(preset, batch, group, base, lr, gamma, ema, ramp, depth, log_dir):
    cfg = compose_cfg([f"preset={preset}"])
    m = cfg.model
    assert cfg.data.batch_size == batch  # one device
    assert (m.mbstd_group, m.channel_base, m.map_depth) == (group, base, depth)
    assert m.optim.g_lr == m.optim.d_lr == lr
    assert m.loss.r1_gamma == gamma and m.ema.kimg == ema and m.ema.rampup == ramp
    assert compose_cfg([f"preset={preset}", "trainer.devices=4"]).data.batch_size == batch // 4


def test_auto_preset_formula():
    # stylegan2-ada-pytorch train.py `auto` (cfg_specs), worked values
    assert auto_preset("batch", 64) == 32 and auto_preset("r1_gamma", 64) == pytest.approx(0.0256)
    assert auto_preset("ema_kimg", 64) == 10 and auto_preset("channel_base", 64) == 16384
    assert auto_preset("batch", 256) == 16 and auto_preset("r1_gamma", 256) == pytest.approx(0.8192)
    assert auto_preset("ema_kimg", 256) == 5
    assert auto_preset("batch", 256, devices=8) == 8 and auto_preset("r1_gamma", 256, 8) == pytest.approx(0.2048)
    assert auto_preset("ema_kimg", 256, 8) == 20 and auto_preset("mbstd_group", 256, 8) == 4
    assert auto_preset("lr", 1024) == 0.002 and auto_preset("channel_base", 512) == 32768
    cfg = compose_cfg(["preset=auto", "data.resolution=64"])
    assert cfg.data.batch_size == 32 and cfg.model.loss.r1_gamma == pytest.approx(0.0256)


def test_debug_modes(log_dir):
    """debug=fast/overfit/profile give way to nothing the experiment sets but the length, and overfit
    draws only the first batch of images, again and again."""
    import torch

    for mode in ("fast", "overfit", "profile"):
        cfg = compose_cfg(["experiment=quickstart", f"debug={mode}", "run_name=t"])
        assert cfg.trainer.max_kimg is None and cfg.trainer.max_steps > 0 and not cfg.logger, mode
    assert compose_cfg(["experiment=quickstart", "debug=profile"]).trainer.profiler == "simple"
    cfg = compose_cfg(["experiment=quickstart", "debug=overfit", "data.batch_size=4", "run_name=t"])
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    first = torch.stack([dm.dataset[i]["image"] for i in range(4)])
    batches = iter(dm.train_dataloader())
    for _ in range(3):
        images = next(batches)["image"]
        assert sorted(map(bytes, images.flatten(1).numpy())) == sorted(map(bytes, first.flatten(1).numpy()))
    with pytest.raises(Exception, match="data.limit_images=0"):
        hydra.utils.instantiate(compose_cfg(["experiment=quickstart", "+data.limit_images=0"]).data)
