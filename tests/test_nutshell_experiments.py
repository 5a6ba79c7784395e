"""The five StyleGAN2-in-a-Nutshell experiments (src/conf/experiment/nutshell_*.yaml): each composes to the
Nutshell's size, channels and colour space, and trains a few steps on tiny data of the kind it needs,
written here in the real formats: IDX files, RGBA PNGs, catalogue and stamp PNGs, and a video clip packed
by prepare_dataset.py. The stamps run then gives its grid, interpolation video and layer view at 48x80."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.checkpoints.load import load_module
from src.modules.stylegan2.module import StyleGAN2
from src.train import train
from src.utils.resolution import parse_size
from tests.conftest import TINY, compose_cfg
from tests.test_fashion_mnist import _write as write_fashion_mnist
from tests.test_video_source import write_clip

# TINY's network and trainer settings; the size, data, colour space and preset are the experiment's.
SHRINK = [o for o in TINY if not o.startswith(("experiment=", "data.resolution="))]


def _pngs(folder: Path, n: int, size: tuple[int, int], mode: str = "RGB") -> Path:
    """``n`` random PNGs of ``size`` (width, height); RGBA ones with a transparent border."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    channels = len(mode)
    for i in range(n):
        a = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        if mode == "RGBA":
            a[..., 3] = 0
            a[size[1] // 4 : -size[1] // 4, size[0] // 4 : -size[0] // 4, 3] = 255
        Image.fromarray(a, mode).save(folder / f"{i:03d}.png")
    return folder


def fashion_mnist(tmp: Path) -> Path:
    write_fashion_mnist(tmp / "fmnist", n=80)  # labels 0..9 in turn: 8 sneakers (class 7)
    return tmp / "fmnist"


def emoji(tmp: Path) -> Path:
    return _pngs(tmp / "emoji", 8, (72, 72), "RGBA")


def catalog(tmp: Path) -> Path:
    return _pngs(tmp / "dresses", 8, (70, 140))  # portrait, 1:2


def rain(tmp: Path) -> Path:
    from src.tools import prepare_dataset

    write_clip(tmp / "rain.mp4", frames=16)  # 160x96 frames
    out = tmp / "rain64x128.zip"
    prepare_dataset.main(
        [f"source={tmp / 'rain.mp4'}", f"out={out}", "resolution=[64,128]", "channels=1", "frame_stride=2", "workers=0"]
    )
    return out


def stamps(tmp: Path) -> Path:
    return _pngs(tmp / "stamps", 8, (100, 60))  # landscape, 3:5


# experiment, data builder, (height, width), colour space, channels the model draws, classes kept
EXPERIMENTS = [
    ("nutshell_fashion_mnist", fashion_mnist, (24, 24), "gray", 1),
    ("nutshell_emoji", emoji, (64, 64), "rgba", 4),
    ("nutshell_catalog", catalog, (128, 64), "rgb", 3),
    ("nutshell_rain", rain, (64, 128), "gray", 1),
    ("nutshell_stamps", stamps, (48, 80), "rgb", 3),
]


def _compose(experiment: str, root: Path, *extra: str):
    return compose_cfg([f"experiment={experiment}", f"data.root={root}", *SHRINK, "logger=none", "run_name=t", *extra])


@pytest.mark.parametrize(("experiment", "data", "size", "colorspace", "channels"), EXPERIMENTS)
def test_experiment_composes_to_the_nutshell_model(experiment, data, size, colorspace, channels):
    cfg = compose_cfg([f"experiment={experiment}", "data.root=/data/x"])
    h, w = size
    res = cfg.data.resolution
    assert parse_size(res if isinstance(res, int) else list(res), "data.resolution") == size
    assert cfg.colorspace.name == colorspace and cfg.colorspace.channels == channels
    assert cfg.task_name == experiment and cfg.trainer.max_kimg > 0
    # the auto preset, read at the long side: batch 32, gamma 0.0002 * side**2 / 32, ADA on
    assert cfg.data.batch_size == 32 and cfg.model.augment.mode == "ada"
    assert cfg.model.loss.r1_gamma == pytest.approx(0.0002 * max(h, w) ** 2 / 32)


@pytest.mark.parametrize(("experiment", "data", "size", "colorspace", "channels"), EXPERIMENTS)
def test_experiment_trains_a_few_steps_on_its_data(experiment, data, size, colorspace, channels, log_dir, tmp_path):
    metrics = train(_compose(experiment, data(tmp_path), "trainer.max_steps=2"))
    assert metrics and all(torch.isfinite(torch.as_tensor(float(v))) for v in metrics.values())
    run = log_dir / experiment / "t"
    module = load_module(run / "checkpoints" / "last.ckpt")
    assert isinstance(module, StyleGAN2)
    with torch.no_grad():
        images = module.sample(torch.randn(2, module.hparams.z_dim), None)
    assert images.shape == (2, channels, *size)
    grid = np.asarray(Image.open(sorted((run / "samples").glob("fakes_*.png"))[-1]))
    assert grid.shape[0] % size[0] == 0 and grid.shape[1] % size[1] == 0


def test_fashion_mnist_experiment_keeps_one_class(tmp_path):
    from hydra.utils import instantiate

    cfg = _compose("nutshell_fashion_mnist", fashion_mnist(tmp_path))
    dm = instantiate(cfg.data)
    dm.setup("fit")
    labels = {int(dm.dataset[i]["label"]) for i in range(len(dm.dataset))}
    assert len(dm.dataset) == 8 and labels == {7}


def test_rain_data_comes_from_the_clip(tmp_path):
    root = rain(tmp_path)
    import zipfile

    with zipfile.ZipFile(root) as z:
        manifest = json.loads(z.read("manifest.json"))
    assert manifest["count"] == 8 and manifest["resolution"] == [64, 128] and manifest["video"]["clips"] == ["rain.mp4"]


def test_stamps_views_come_out_at_48x80(log_dir, tmp_path):
    from src.tools import visualize
    from src.visualize.video import read_video

    train(_compose("nutshell_stamps", stamps(tmp_path), "trainer.max_steps=2"))
    ckpt = log_dir / "nutshell_stamps" / "t" / "checkpoints" / "last.ckpt"
    out = tmp_path / "views"
    visualize.main(["interp", f"ckpt={ckpt}", "seeds=0-1", "frames=2", "scale=1", "formats=[mp4,gif]", f"out={out}"])
    assert read_video(out / "interp.gif")[0].shape == (48, 80, 3)
    assert read_video(out / "interp.mp4")[0].shape == (48, 80, 3)
    visualize.main(["layers", f"ckpt={ckpt}", "seeds=0", f"out={out}"])
    layers = np.asarray(Image.open(out / "layers.png"))
    assert layers.shape[1] % 80 == 0 and layers.shape[0] % 48 == 0
