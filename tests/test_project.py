"""The projector (NVIDIA's projector.py), its latent file, and scripts/project.py on tiny networks, CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from src.colorspaces import get_colorspace
from src.latents.files import Latents, load_latents, save_latents
from src.metrics.lpips import LPIPS, _load_heads, heads_file
from src.modules.stylegan2.generator import Generator
from src.pretrained.weights import WEIGHTS
from src.projection.projector import Projector, ProjectorConfig, jitter_scale, lr_at, noise_regularization, renormalize_
from src.tools import generate, project

ROOT = Path(__file__).resolve().parents[1]

RGB = get_colorspace("rgb")


@pytest.fixture(scope="module")
def lpips_net():
    torch.manual_seed(0)
    return LPIPS(torchvision.models.vgg16(weights=None).features[:30], _load_heads(heads_file("/nonexistent")))


@pytest.fixture(scope="module")
def tiny_g():
    torch.manual_seed(0)
    return Generator(z_dim=16, w_dim=16, resolution=(16, 16), map_depth=1, channel_base=128, channel_max=16).eval()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny non-square training run (3 iterations) with the D-scores callback; shared by the tool tests."""
    from src.train import train
    from tests.conftest import TINY, compose_cfg, logs_in

    log_dir = tmp_path_factory.mktemp("logs")
    with logs_in(log_dir):
        train(
            compose_cfg(
                [
                    *TINY,
                    "logger=none",
                    "run_name=tools",
                    "data.resolution=[16,32]",
                    "trainer.max_steps=3",
                    "callbacks=[default,d_scores]",
                    "callbacks.sample_grid.every_kimg=0.004",
                    "callbacks.d_scores.every_kimg=0.004",
                    "callbacks.d_scores.num=4",
                ]
            )
        )
    return log_dir / "quickstart" / "tools"


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """Random VGG-16 trunk weights under the upstream file name (LPIPS heads come from torchmetrics)."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    trunk = torchvision.models.vgg16(weights=None).features
    torch.save({f"features.{k}": v for k, v in trunk.state_dict().items()}, d / WEIGHTS["vgg16"].filename)
    return d


# ----------------------------------------------------------------------------------------------
# formulas (NVIDIA's projector.py)


def test_schedule_and_regularizers_follow_the_reference():
    assert lr_at(0.0) == 0.0 and lr_at(0.5) == pytest.approx(0.1) and lr_at(0.025) == pytest.approx(0.05)
    assert lr_at(1 - 0.125) == pytest.approx(0.05)  # half-way down the cosine ramp
    assert jitter_scale(0.0, 2.0) == pytest.approx(0.1) and jitter_scale(0.75, 2.0) == 0.0
    smooth = torch.ones(1, 16, 16)
    rough = torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert noise_regularization([smooth]) > 100 * noise_regularization([rough])
    maps = [torch.randn(2, 8, 8) * 3 + 1]
    renormalize_(maps)
    assert torch.allclose(maps[0].mean(dim=(1, 2)), torch.zeros(2), atol=1e-6)
    assert torch.allclose(maps[0].square().mean(dim=(1, 2)), torch.ones(2), atol=1e-5)


def test_bad_mode_lists_the_three():
    with pytest.raises(ValueError, match="mode='wplus': choose one of w, w_plus, w_then_w_plus"):
        ProjectorConfig(mode="wplus")
    with pytest.raises(SystemExit, match="w, w_plus, w_then_w_plus"):
        project.parse_args(["ckpt=x", "target=y", "mode=z"])


# ----------------------------------------------------------------------------------------------
# behaviour


@pytest.mark.slow  # ~10 s uncontended: 100 LPIPS-VGG steps
def test_w_projection_recovers_the_w_of_a_generated_image(tiny_g, lpips_net):
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        w_true = tiny_g.mapping(z)
        target = RGB.decode(tiny_g.synthesis(w_true, noise_mode="const"))
    proj = Projector(tiny_g, RGB, lpips_net, ProjectorConfig(mode="w", steps=100, noise="const", w_stats_n=1000))
    res = proj.project(target)
    start = (w_true[:, 0] - proj.w_avg).norm(dim=1) / proj.w_std
    err = (res.latents.ws - w_true).norm(dim=2).amax(1) / proj.w_std
    assert (err < 0.05).all() and (err < start / 10).all(), (err, start)  # in w_std units
    assert all(m["lpips"] < 1e-3 and m["psnr"] > 30 for m in res.metrics), res.metrics
    assert all(m["layer_spread"] < 1e-5 for m in res.metrics)  # W: one code tiled over the layers
    assert res.history[-1]["lpips"] < res.history[0]["lpips"]


@pytest.mark.slow  # ~10 s uncontended
def test_w_plus_fits_better_and_strays_further_from_w_avg(tiny_g, lpips_net):
    """Targets outside W (coarse layers from one far code, fine layers from another): the trade-off."""
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ws = tiny_g.mapping(z, psi=1.5)  # codes beyond the bulk of W
        mixed = torch.cat([ws[0::2, :3], ws[1::2, 3:]], dim=1)
        targets = RGB.decode(tiny_g.synthesis(mixed, noise_mode="const"))
    out = {}
    for mode in ("w", "w_plus"):
        proj = Projector(tiny_g, RGB, lpips_net, ProjectorConfig(mode=mode, steps=60, noise="const", w_stats_n=1000))
        out[mode] = proj.project(targets).metrics
    for w, wp in zip(out["w"], out["w_plus"]):
        assert wp["lpips"] < w["lpips"]
        assert wp["w_avg_distance_max"] > w["w_avg_distance_max"]  # the furthest layer code
        assert wp["layer_spread"] > 0.1 > w["layer_spread"]
    mean = {m: sum(t["w_avg_distance"] for t in out[m]) / 2 for m in out}
    assert mean["w_plus"] > mean["w"]


def test_latent_file_round_trip_and_shape_mismatch(tiny_g, tmp_path):
    import copy

    from src.latents.files import fingerprint, render

    tiny_g = copy.deepcopy(tiny_g)
    with torch.no_grad():
        for m in tiny_g.modules():
            if hasattr(m, "noise_strength"):
                m.noise_strength.fill_(0.5)  # a fresh G ignores its noise
    ws = tiny_g.mapping(torch.randn(2, 16))
    noise = {k: torch.randn(2, *s) for k, s in fingerprint(tiny_g)["noise"].items()}
    path = save_latents(tmp_path / "lat.safetensors", Latents(ws, noise, {"names": ["a", "b"]}), tiny_g)
    lat = load_latents(path, tiny_g)
    assert torch.equal(lat.ws, ws) and lat.info["names"] == ["a", "b"]
    # per-image noise maps are used by 'const' rendering
    a = render(tiny_g, lat)
    b = render(tiny_g, Latents(ws, {k: v.flip(0) for k, v in noise.items()}))
    assert a.shape == (2, 3, 16, 16) and not torch.equal(a, b)
    other = Generator(z_dim=16, w_dim=16, resolution=(32, 32), map_depth=1, channel_base=128, channel_max=16)
    with pytest.raises(
        ValueError, match=r"made for another generator: num_ws: the latent file has 6, the generator has 8"
    ):
        load_latents(path, other)
    with pytest.raises(FileNotFoundError, match="latents="):
        load_latents(tmp_path / "none.safetensors", tiny_g)


# ----------------------------------------------------------------------------------------------
# the CLI


def _targets(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 255, (40, 60, 3), dtype=np.uint8)).save(folder / "a.png")  # other size
    Image.fromarray(rng.randint(0, 255, (16, 32), dtype=np.uint8)).save(folder / "b.png")  # gray
    return folder


def test_project_cli_writes_latents_images_video_and_json(run, weights_dir, tmp_path, capsys):
    ckpt = run / "checkpoints" / "last.ckpt"
    out = tmp_path / "proj"
    project.main(
        [
            f"ckpt={ckpt}",
            f"target={_targets(tmp_path / 'targets')}",
            "mode=w_then_w_plus",
            "steps=12",
            f"out={out}",
            f"weights_dir={weights_dir}",
            "w_stats_n=500",
            "frame_every=4",
        ]
    )
    printed = capsys.readouterr().out
    assert "note: a.png: 60x40 center-cropped" in printed and "note: b.png: L image (1 channels)" in printed
    summary = json.loads((out / "projection.json").read_text())
    assert [t["name"] for t in summary["targets"]] == ["a", "b"]
    for t in summary["targets"]:
        assert {"lpips", "psnr", "w_avg_distance", "layer_spread"} <= set(t) and t["layer_spread"] > 0
    assert np.asarray(Image.open(out / "a.png")).shape == (16, 32, 3)
    from src.visualize.video import read_video

    assert len(read_video(out / "progress.gif")) == len(read_video(out / "progress.mp4")) == 4  # steps 0,4,8,11
    # the latents render with generate.py, named after the targets, equal to the projector's images
    gen_out = tmp_path / "gen"
    generate.main([f"ckpt={ckpt}", f"latents={out / 'latents.safetensors'}", f"out={gen_out}"])
    assert np.array_equal(np.asarray(Image.open(gen_out / "a.png")), np.asarray(Image.open(out / "a.png")))


def test_project_cli_bad_inputs_are_one_clear_line(run, weights_dir, tmp_path):
    ckpt = run / "checkpoints" / "last.ckpt"
    target = _targets(tmp_path / "t")
    with pytest.raises(SystemExit, match="no such checkpoint file"):
        project.main([f"ckpt={tmp_path / 'no.ckpt'}", f"target={target}", f"weights_dir={weights_dir}"])
    with pytest.raises(SystemExit, match=r"vgg16-397923af.pth not found in paths.weights_dir"):
        project.main([f"ckpt={ckpt}", f"target={target}", f"weights_dir={tmp_path / 'empty'}"])
    with pytest.raises(SystemExit, match="target=.*no such file or folder"):
        project.main([f"ckpt={ckpt}", f"target={tmp_path / 'nothing.png'}", f"weights_dir={weights_dir}"])


def test_generate_refuses_latents_of_another_generator(run, tiny_g, tmp_path):
    path = save_latents(tmp_path / "lat.safetensors", Latents(tiny_g.mapping(torch.randn(1, 16))), tiny_g)
    with pytest.raises(
        SystemExit,
        match="made for another generator: resolution: the latent file has "
        r"\[16, 16\], the generator has \[16, 32\]",
    ):
        generate.main([f"ckpt={run / 'checkpoints' / 'last.ckpt'}", f"latents={path}", f"out={tmp_path / 'o'}"])
