"""The tools and views on a StyleGAN3 generator (issue 38, part 5): generate.py's translate/rotate (NVlabs/stylegan3
gen_images.py), the rotation video, the projector, the layer view, the explorer's sliders and NVIDIA's average power
spectrum (avg_spectra.py), on a tiny StyleGAN3 trained for one step, CPU."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from src.checkpoints.load import load_inference
from src.metrics.lpips import LPIPS, _load_heads, heads_file
from src.nn.input_transform import parse_translate, transformed, user_transform
from src.tools import generate, project, visualize
from src.visualize.render import seeds_to_w
from tests.conftest import compose_cfg, logs_in, tiny_run

R = 16  # the tiny StyleGAN3's resolution
TINY_SG3 = [
    "model=stylegan3",
    "model.loss.r1_gamma=1",
    "data=shapes",
    f"data.resolution={R}",
    "data.batch_size=4",
    "model.z_dim=16",
    "model.w_dim=16",
    "model.channel_base=512",
    "model.channel_max=16",
    "model.mbstd_group=2",
    "trainer=cpu",
    "trainer.max_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.sample_grid.every_kimg=100",
]


@pytest.fixture(scope="module")
def sg3_ckpt(tmp_path_factory) -> Path:
    """A tiny StyleGAN3-T (16 px: 14 layers + ToRGB at 36 or 16 px, 16 channels) after one iteration."""
    from src.train import train

    logs = tmp_path_factory.mktemp("logs")
    with logs_in(logs):
        train(compose_cfg([*TINY_SG3, "logger=none", "run_name=sg3"]))
    path = logs / "train" / "sg3" / "checkpoints" / "last.ckpt"
    # one step leaves the image within a few levels of gray; a 60x ToRGB (no demodulation) gives it contrast
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["state_dict"]["G_ema.synthesis.layers.14.weight"] *= 60
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def sg2_ckpt(tmp_path_factory) -> Path:
    """A tiny StyleGAN2 (learned constant input: no input transform)."""
    return tiny_run(tmp_path_factory.mktemp("logs2"), "sg2", steps=1) / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def model(sg3_ckpt):
    return load_inference(sg3_ckpt)


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def make_transform(translate, angle):
    """NVlabs/stylegan3 gen_images.py's matrix, written out: rotation by ``angle`` degrees, then ``translate``."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]])


# ----------------------------------------------------------------------------------------------
# generate.py translate= rotate=


def test_user_transform_is_gen_images_inverse():
    for t, a in [((0, 0), 0), ((0.3, 1), 0), ((0, 0), 45), ((-0.25, 0.5), 200)]:
        m = user_transform(t, a).numpy()
        assert np.allclose(m @ make_transform(t, a), np.eye(3), atol=1e-12)
        r = make_transform((0, 0), a)[:2, :2]  # closed form of the inverse: [R^T, -R^T t]
        assert np.allclose(m[:2, :2], r.T) and np.allclose(m[:2, 2], -r.T @ np.array(t, float))
    assert parse_translate("0.3,1") == (0.3, 1.0) and parse_translate([1, -2]) == (1.0, -2.0)
    with pytest.raises(ValueError, match="translate='1': expected X,Y"):
        parse_translate("1")


def test_translate_moves_the_input_features_by_that_many_units(model):
    """Content moves toward +x: the Fourier features under translate=(k / rate, 0) are the untransformed
    features shifted right by k samples (the sign gen_images.py gives --translate)."""
    syn = model.G.synthesis
    rate, k = float(syn.schedule.sampling_rates[0]), 4
    ws = seeds_to_w(model, [3])
    feats = []
    hook = syn.input.register_forward_hook(lambda m, a, out: feats.append(out))
    try:
        with torch.no_grad():
            syn(ws)
            with transformed(syn, (k / rate, 0.0), 0.0):
                syn(ws)
            with transformed(syn, (0.0, 0.0), 90.0):
                syn(ws)
    finally:
        hook.remove()
    plain, moved, turned = feats
    assert torch.allclose(moved[..., k:], plain[..., :-k], atol=1e-5)
    assert not torch.allclose(moved, plain, atol=1e-3)
    # a quarter turn maps the (centred) sampling grid onto itself: the same samples, rearranged
    assert torch.allclose(turned.flatten(2).sort(dim=2).values, plain.flatten(2).sort(dim=2).values, atol=1e-4)
    assert torch.equal(syn.input.transform, torch.eye(3))  # restored


def test_generate_translate_rotate_is_gen_images(model, sg3_ckpt, tmp_path):
    generate.main([f"ckpt={sg3_ckpt}", "seeds=1-2", "translate=0.3,-0.2", "rotate=30", f"out={tmp_path / 'a'}"])
    generate.main([f"ckpt={sg3_ckpt}", "seeds=1-2", f"out={tmp_path / 'b'}"])
    generate.main([f"ckpt={sg3_ckpt}", "seeds=1-2", "rotate=360", f"out={tmp_path / 'c'}"])
    syn = model.G.synthesis
    z = torch.from_numpy(np.random.RandomState(1).randn(1, model.G.z_dim)).float()
    with torch.no_grad():
        syn.input.transform.copy_(torch.from_numpy(np.linalg.inv(make_transform((0.3, -0.2), 30))))  # NVIDIA's way
        nvidia = model.colorspace.decode(model.G(z))
        syn.input.transform.copy_(torch.eye(3))
    ours = png(tmp_path / "a" / "seed0001.png").astype(int)
    assert np.abs(ours - (nvidia[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(int)).max() <= 1
    assert np.abs(ours - png(tmp_path / "b" / "seed0001.png").astype(int)).mean() > 2
    assert np.abs(png(tmp_path / "c" / "seed0001.png").astype(int) - png(tmp_path / "b" / "seed0001.png")).max() <= 1


def test_a_generator_without_input_transform_refuses_in_one_line(sg2_ckpt, tmp_path):
    with pytest.raises(SystemExit, match=r"^generate.py: translate=0.5,0 rotate=0: .* takes no input transform"):
        generate.main([f"ckpt={sg2_ckpt}", "seeds=0", "translate=0.5,0", f"out={tmp_path}"])
    with pytest.raises(SystemExit, match="translate=0,0 rotate=5: .* takes no input transform"):
        visualize.main(["transform", f"ckpt={sg2_ckpt}", "seeds=0", "frames=2", "rotate_to=10", f"out={tmp_path}"])
    with pytest.raises(SystemExit, match="rotate='x': expected an angle"):
        generate.main([f"ckpt={sg2_ckpt}", "rotate=x"])
    generate.main([f"ckpt={sg2_ckpt}", "seeds=0", "translate=0,0", "rotate=0", f"out={tmp_path / 'id'}"])
    generate.main([f"ckpt={sg2_ckpt}", "seeds=0", f"out={tmp_path / 'plain'}"])
    assert np.array_equal(png(tmp_path / "id" / "seed0000.png"), png(tmp_path / "plain" / "seed0000.png"))


# ----------------------------------------------------------------------------------------------
# videos


def test_rotation_video_frames_are_generate_py_images(model, sg3_ckpt, tmp_path):
    from src.visualize.transform_sweep import sweep_steps, transform_frames
    from src.visualize.video import read_video

    steps = sweep_steps(4, (0.0, 360.0), ((0.0, 0.0), (0.0, 0.0)))
    assert [r for _, r in steps] == [0, 90, 180, 270]
    assert sweep_steps(3, (0, 0), ((0, 0), (0.5, 1)), loop=False)[-1] == ((0.5, 1.0), 0.0)
    frames = transform_frames(model, seeds_to_w(model, [0, 1]), steps, nrow=2)
    for frame, (_, angle) in list(zip(frames, steps))[1::2]:  # 90 and 270 degrees
        out = tmp_path / f"r{angle:g}"
        generate.main([f"ckpt={sg3_ckpt}", "seeds=0-1", f"rotate={angle}", f"out={out}"])
        assert np.abs(frame[:, :R].astype(int) - png(out / "seed0000.png")).max() <= 1, angle
        assert np.abs(frame[:, R:].astype(int) - png(out / "seed0001.png")).max() <= 1, angle
    visualize.main(["transform", f"ckpt={sg3_ckpt}", "seeds=0-3", "frames=4", "scale=1", f"out={tmp_path / 'v'}"])
    video = read_video(tmp_path / "v" / "transform.mp4")
    assert len(video) == 4 and video[0].shape == (2 * R, 2 * R, 3)
    assert (tmp_path / "v" / "transform.gif").is_file()


def test_interpolation_video_with_a_held_rotation(model, sg3_ckpt, tmp_path):
    from src.visualize.video import read_video

    out = tmp_path / "interp"
    visualize.main(["interp", f"ckpt={sg3_ckpt}", "seeds=0-2", "frames=3", "rotate=30", "translate=0.1,0",
                    "formats=[mp4]", "scale=1", f"out={out}"])  # fmt: skip
    assert len(read_video(out / "interp.mp4")) == 9
    from src.visualize.interpolation import interpolation_frames

    with transformed(model.G.synthesis, (0.1, 0.0), 30.0):
        first = interpolation_frames(model, [0, 1, 2], 3)[0]
    generate.main([f"ckpt={sg3_ckpt}", "seeds=0", "rotate=30", "translate=0.1,0", f"out={tmp_path / 'g'}"])
    assert np.abs(first.astype(int) - png(tmp_path / "g" / "seed0000.png")).max() <= 1


# ----------------------------------------------------------------------------------------------
# projector, layer view, noise view


def test_projector_w_and_w_plus_on_a_generator_without_noise(model, sg3_ckpt, weights_dir, tmp_path):
    from src.projection.projector import Projector, ProjectorConfig

    torch.manual_seed(0)
    lpips = LPIPS(torchvision.models.vgg16(weights=None).features[:30], _load_heads(heads_file("/nonexistent")))
    with torch.no_grad():
        target = model.colorspace.decode(model.synthesize(seeds_to_w(model, [5])))
    for mode, noise in (("w", "optimize"), ("w_plus", "const")):  # no noise maps to optimise or to hold
        cfg = ProjectorConfig(mode=mode, steps=3, noise=noise, w_stats_n=200)
        res = Projector(model.G, model.colorspace, lpips, cfg).project(target)
        assert res.latents.noise == {} and res.latents.ws.shape == (1, model.G.num_ws, model.G.w_dim)
        assert res.history[-1]["lpips"] < res.history[0]["lpips"], (mode, noise)
        spread = res.metrics[0]["layer_spread"]
        assert spread < 1e-5 if mode == "w" else spread > 0
    out = tmp_path / "proj"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (R, R, 3), dtype=np.uint8)).save(tmp_path / "t.png")
    project.main([f"ckpt={sg3_ckpt}", f"target={tmp_path / 't.png'}", "mode=w_plus", "steps=3", "video=[]",
                  "w_stats_n=200", f"weights_dir={weights_dir}", f"out={out}"])  # fmt: skip
    generate.main([f"ckpt={sg3_ckpt}", f"latents={out / 'latents.safetensors'}", f"out={tmp_path / 'gen'}"])
    assert np.array_equal(png(tmp_path / "gen" / "t.png"), png(out / "t.png"))


def test_layer_view_shows_every_layer_at_its_own_size(model, sg3_ckpt, tmp_path, capsys):
    from src.visualize.layers import activation_view_grid, layer_activations

    syn = model.G.synthesis
    ws = seeds_to_w(model, [0, 1])
    acts, final = layer_activations(syn, ws)
    assert [n for n, _ in acts] == ["input"] + [f"layers.{i}" for i in range(15)]  # 14 layers + ToRGB
    sizes = [tuple(a.shape[2:]) for _, a in acts]
    assert sizes == [tuple(syn.input.size)] + [tuple(spec.out_size) for spec in syn.schedule.layers]
    assert sizes[1] == (36, 36) and sizes[-1] == (R, R)  # margin of 10 on each side, then the image
    assert torch.allclose(acts[-1][1] * syn.output_scale, final)  # ToRGB's output, scaled, is the image
    images, ncol, names = activation_view_grid(model, ws)
    assert ncol == 17 and images.shape == (2 * 17, 3, 36, 36) and names[-1] == "image"
    capsys.readouterr()
    visualize.main(["layers", f"ckpt={sg3_ckpt}", "seeds=0-1", "channel=5", f"out={tmp_path}"])
    assert "columns: input 16x36x36, layers.0 16x36x36" in capsys.readouterr().out
    grid = png(tmp_path / "layers.png")
    assert grid.shape == (2 * 36, 17 * 36, 3)
    last = grid[36 + 10 : 36 + 10 + R, 16 * 36 + 10 : 16 * 36 + 10 + R]  # seed 1's image, centred
    generate.main([f"ckpt={sg3_ckpt}", "seeds=1", f"out={tmp_path / 'g'}"])
    assert np.abs(last.astype(int) - png(tmp_path / "g" / "seed0001.png")).max() <= 1
    assert (grid[36:, 16 * 36 : 16 * 36 + 10] == 0).all()  # the canvas around the 16 px image
    with pytest.raises(SystemExit, match="has no noise inputs"):
        visualize.main(["noise", f"ckpt={sg3_ckpt}", f"out={tmp_path}"])


# ----------------------------------------------------------------------------------------------
# explorer


def test_explorer_seed_grid_takes_translate_and_rotate(sg3_ckpt, sg2_ckpt, tmp_path):
    from src.explorer.app import build_app
    from src.explorer.views import Explorer

    ex = Explorer.open(sg3_ckpt, tmp_path / "ws")
    info = ex.describe()
    assert info["input_transform"] and info["layer_view"] == "activations" and info["noise_layers"] == 0
    generate.main([f"ckpt={sg3_ckpt}", "seeds=2-3", "translate=0.25,0.1", "rotate=-40", f"out={tmp_path / 'g'}"])
    grid = ex.seed_grid("2-3", 1.0, None, "const", None, 0.25, 0.1, -40)
    for i, seed in enumerate((2, 3)):
        assert np.array_equal(grid[:, i * R : (i + 1) * R], png(tmp_path / "g" / f"seed{seed:04d}.png")), seed
    assert not np.array_equal(grid, ex.seed_grid("2-3"))
    assert ex.layers(0, channel=3).shape == (36, 17 * 36, 3)

    plain = Explorer.open(sg2_ckpt, tmp_path / "ws2")
    assert not plain.describe()["input_transform"] and plain.describe()["layer_view"] == "torgb"
    with pytest.raises(ValueError, match="takes no input transform"):
        plain.seed_grid("0", rotate=15)

    def controls(explorer):
        blocks = build_app(explorer).blocks.values()
        return {b.elem_id: b.visible for b in blocks if b.elem_id in ("seed-translate-x", "seed-translate-y",
                                                                       "seed-rotate", "layer-channel")}  # fmt: skip

    assert controls(ex) == {"seed-translate-x": True, "seed-translate-y": True, "seed-rotate": True,
                            "layer-channel": True}  # fmt: skip
    assert not any(controls(plain).values()) and len(controls(plain)) == 4


# ----------------------------------------------------------------------------------------------
# average power spectrum (avg_spectra.py)


def nvidia_spectrum(images: np.ndarray, mean: float, std: float, beta: float = 8, interp: int = 4) -> np.ndarray:
    """avg_spectra.py calc in numpy: whiten, Kaiser window (unit energy per axis), zero-pad, |FFT|^2, average."""
    n, c, h, w = images.shape
    wh, ww = np.kaiser(h, beta), np.kaiser(w, beta)
    window = np.outer(wh / np.sqrt((wh**2).sum()), ww / np.sqrt((ww**2).sum()))
    x = (images.astype(np.float64) - mean) / std * window
    padded = np.zeros((n, c, h * interp, w * interp))
    padded[:, :, :h, :w] = x
    return (np.abs(np.fft.fft2(padded)) ** 2).mean(axis=(0, 1))


@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_spectrum_of_a_sinusoid_peaks_at_its_frequency(size):
    from src.visualize.spectrum import SpectrumAccumulator, heatmap_db

    h, w = size
    fy, fx = 3, 5  # cycles per image
    y, x = np.mgrid[0:h, 0:w]
    wave = 120 + 100 * np.cos(2 * np.pi * (fx * x / w + fy * y / h))
    rng = np.random.default_rng(0)
    images = np.clip(wave[None, None] + rng.normal(0, 2, (6, 3, h, w)), 0, 255).round().astype(np.uint8)
    acc = SpectrumAccumulator((h, w), interp=4, beta=8)
    acc.add(torch.from_numpy(images[:4]))
    acc.add(torch.from_numpy(images[4:]))
    mean, std = acc.stats()
    assert mean == pytest.approx(images.mean()) and std == pytest.approx(images.astype(np.float64).std())
    spec = acc.spectrum()
    assert np.allclose(spec.power, nvidia_spectrum(images, mean, std), rtol=1e-9, atol=1e-9)
    assert np.allclose(acc.spectrum(112.7, 69.5).power, nvidia_spectrum(images, 112.7, 69.5), rtol=1e-9, atol=1e-9)
    peak = np.unravel_index(np.argmax(spec.power), spec.power.shape)
    assert peak in {(4 * fy, 4 * fx), (4 * (h - fy), 4 * (w - fx))}  # the wave and its mirror, interp 4 bins per cycle
    hmap = heatmap_db(spec)
    assert hmap.shape == (4 * h + 1, 4 * w + 1)
    assert hmap[2 * h + 4 * fy, 2 * w + 4 * fx] == pytest.approx(10 * np.log10(spec.power.max()))  # centred


def test_spectrum_cli_for_reals_and_fakes(sg3_ckpt, tmp_path, capsys):
    from src.visualize.spectrum import load_spectrum

    reals = tmp_path / "reals"
    generate.main([f"ckpt={sg3_ckpt}", "seeds=100-109", f"out={reals}"])
    out = tmp_path / "spec"
    capsys.readouterr()
    visualize.main(["spectrum", f"ckpt={sg3_ckpt}", f"data={reals}", "num=6", f"out={out}"])
    printed = capsys.readouterr().out
    for name in ("reals.npz", "fakes.npz", "reals_heatmap.png", "fakes_heatmap.png", "slices.png"):
        assert (out / name).is_file(), name
    with np.load(out / "fakes.npz") as npz:  # the keys avg_spectra.py's heatmap/slices read
        assert npz["spectrum"].shape == (4 * R, 4 * R) and int(npz["image_size"]) == R
    reals_s, fakes_s = load_spectrum(out / "reals.npz"), load_spectrum(out / "fakes.npz")
    assert reals_s.num == fakes_s.num == 6 and (reals_s.mean, reals_s.std) == (fakes_s.mean, fakes_s.std)
    assert "whitened by mean" in printed
    # generated images for seeds 0..5 are the spectrum's fakes: the reals folder of those seeds gives the same
    generate.main([f"ckpt={sg3_ckpt}", "seeds=0-5", f"out={tmp_path / 'same'}"])
    visualize.main(["spectrum", f"data={tmp_path / 'same'}", "num=null", f"mean={fakes_s.mean}",
                    f"std={fakes_s.std}", f"out={tmp_path / 'same_spec'}"])  # fmt: skip
    assert np.allclose(load_spectrum(tmp_path / "same_spec" / "reals.npz").power, fakes_s.power, rtol=1e-9)
    visualize.main(["spectrum", f"npz=[{out / 'reals.npz'},{out / 'fakes.npz'}]", f"out={tmp_path / 'plots'}"])
    assert (tmp_path / "plots" / "slices.png").is_file()
    with pytest.raises(SystemExit, match="holds 10 images, fewer than num=20"):
        visualize.main(["spectrum", f"data={reals}", "num=20", f"out={out}"])
    with pytest.raises(SystemExit, match="name the images"):
        visualize.main(["spectrum", f"out={out}"])


@pytest.mark.slow
def test_rotate_slider_redraws_the_seed_grid_in_headless_chromium(sg3_ckpt, tmp_path):
    """A StyleGAN3 page shows the sliders; moving rotate redraws the grid (driven as in tests/test_explorer.py)."""
    from src.explorer.app import launch, workspace
    from src.explorer.views import Explorer
    from tests.browser import chromium, free_port
    from tests.test_explorer import shot

    if chromium() is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with workspace() as ws:
        port = free_port()
        demo = launch(Explorer.open(sg3_ckpt, ws), "127.0.0.1", port, block=False)
        try:
            with playwright.sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1100})
                    page.goto(f"http://127.0.0.1:{port}")
                    page.wait_for_selector("#seed-grid img", timeout=60_000)
                    assert page.locator("#seed-rotate").is_visible() and page.locator("#seed-translate-x").is_visible()
                    src = page.locator("#seed-grid img").get_attribute("src")
                    before = shot(page, tmp_path / "before.png", "#seed-grid img")
                    box = page.locator("#seed-rotate input[type=number]")
                    box.fill("90")
                    box.press("Enter")
                    page.wait_for_function(
                        "s => document.querySelector('#seed-grid img').src != s", arg=src, timeout=60_000
                    )
                    page.wait_for_load_state("networkidle")
                    after = shot(page, tmp_path / "after.png", "#seed-grid img")
                    assert before.shape == after.shape and np.abs(before.astype(int) - after.astype(int)).mean() > 1
                finally:
                    browser.close()
        finally:
            demo.close()
