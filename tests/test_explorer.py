"""The latent explorer (scripts/explore.py): every view's server function against the CLI tool that
writes the same view, the caches and cancellation, the safety rules, and the page in headless Chromium."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from src.explorer.app import launch, workspace
from src.explorer.views import Cancelled, Explorer, read_upload
from src.metrics.lpips import LPIPS, _load_heads, heads_file
from src.tools import colorize, explore, generate, project, traverse, visualize
from src.visualize.interpolation import interpolation_frames
from tests.browser import chromium, free_port, needs_chromium
from tests.conftest import TINY, compose_cfg, logs_in
from tests.test_chromagan import chroma_ckpt, vgg_dir  # noqa: F401 (fixtures)

R = 16  # TINY's resolution


@pytest.fixture(scope="module")
def segan_ckpt(tmp_path_factory) -> Path:
    """A tiny conditional SEGAN (mode 2) after one iteration: every generator view applies to it."""
    from src.train import train

    logs = tmp_path_factory.mktemp("logs")
    with logs_in(logs):
        train(compose_cfg([*TINY, "logger=none", "run_name=ex", "model=segan", "model.mode=2", "trainer.max_steps=1",
                           "callbacks.sample_grid.every_kimg=100"]))  # fmt: skip
    return logs / "quickstart" / "ex" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def lpips_net():
    torch.manual_seed(0)
    return LPIPS(torchvision.models.vgg16(weights=None).features[:30], _load_heads(heads_file("/nonexistent")))


@pytest.fixture(scope="module")
def ex(segan_ckpt, lpips_net, tmp_path_factory):
    return Explorer.open(segan_ckpt, tmp_path_factory.mktemp("workspace"), lpips=lpips_net, stats_n=200)


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def cell(grid: np.ndarray, row: int, col: int, h: int = R, w: int = R) -> np.ndarray:
    return grid[row * h : (row + 1) * h, col * w : (col + 1) * w]


# ----------------------------------------------------------------------------------------------
# Each view returns the CLI's image for the same inputs.


def test_seed_grid_cells_are_generate_py_images(ex, segan_ckpt, tmp_path):
    generate.main([f"ckpt={segan_ckpt}", "seeds=3-6", "trunc=0.6", "trunc_cutoff=2", f"out={tmp_path}"])
    grid = ex.seed_grid("3-6", 0.6, 2)
    assert grid.shape == (2 * R, 2 * R, 3)
    for i, seed in enumerate(range(3, 7)):
        assert np.array_equal(cell(grid, *divmod(i, 2)), png(tmp_path / f"seed{seed:04d}.png")), seed
    # the conditional model's class: all seeds of class 2, as generate.py class_idx=2
    generate.main([f"ckpt={segan_ckpt}", "seeds=3", "class_idx=2", f"out={tmp_path / 'c'}"])
    assert np.array_equal(ex.seed_grid("3", class_idx="2"), png(tmp_path / "c" / "seed0003.png"))


def test_mapping_runs_once_per_seeds_and_class(ex):
    calls = []
    hook = ex.model.G.mapping.register_forward_hook(lambda m, a, out: calls.append(a[0].shape[0]))
    try:
        first = ex.seed_grid("40-41", 1.0)
        ex.seed_grid("40-41", 0.5, 3)  # truncation and cutoff: no new mapping
        ex.seed_grid("40-41", 0.5, 3, "random")
        assert calls == [2]
        assert np.array_equal(ex.seed_grid("40-41", 1.0), first)
        ex.seed_grid("40-42")
        ex.seed_grid("40-41", class_idx="1")
        assert calls == [2, 3, 2]
    finally:
        hook.remove()


def test_style_mixing_layers_and_noise_views_are_visualize_py_images(ex, segan_ckpt, tmp_path):
    ck = f"ckpt={segan_ckpt}"
    visualize.main(["mix", ck, "rows=0-1", "cols=5-7", "layers=1-2", "trunc=0.8", f"out={tmp_path}"])
    assert np.array_equal(ex.style_mixing("0-1", "5-7", "1-2", 0.8), png(tmp_path / "mix.png"))
    visualize.main(["layers", ck, "seeds=4", "noise_mode=none", f"out={tmp_path}"])
    assert np.array_equal(ex.layers(4, 1.0, "none"), png(tmp_path / "layers.png"))
    visualize.main(["noise", ck, "seed=2", "variants=3", "noise_seed=5", f"out={tmp_path}"])
    assert np.array_equal(ex.noise(2, 1.0, 3, 5), png(tmp_path / "noise.png"))


@pytest.mark.parametrize("space", ["w", "z"])
def test_interpolation_frame_is_the_cli_videos_frame(ex, space):
    frames = interpolation_frames(ex.model, [7, 9], 4, space, (1, 1), 0.7, "const", False, None)  # visualize interp
    assert len(frames) == 5
    for i, frame in enumerate(frames):
        mine = ex.interpolation_frame(7, 9, i / 4, space, 0.7)
        assert np.abs(mine.astype(int) - frame.astype(int)).max() <= 1, i  # batch 1 vs batch 5: float rounding
    assert not np.array_equal(frames[0], frames[2])


def test_video_export_reports_progress_and_cancels(ex):
    seen = []
    path = ex.interpolation_video("0-2", 3, "w", fmt="gif", progress=lambda done, total: seen.append((done, total)))
    assert path.parent.parent == ex.workspace and path.suffix == ".gif"
    assert Image.open(path).n_frames == 9 and seen[-1] == (9, 9)

    def cancel(done, total):
        ex.cancel()

    with pytest.raises(Cancelled):
        ex.interpolation_video("0-2", 40, "w", fmt="gif", progress=cancel)


def test_segan_slider_is_traverse_py_and_the_table_its_table(ex, segan_ckpt, tmp_path, capsys):
    traverse.main([f"ckpt={segan_ckpt}", "layer=1", "subspace=2", "dims=[3]", "values=[2.5]", "seeds=[6]",
                   "stats_n=200", f"out={tmp_path}"])  # fmt: skip
    moved = ex.segan_edit(6, 1, 2, 3, 2.5)
    assert np.array_equal(moved, png(tmp_path / "L1N2D3.png"))
    assert not np.array_equal(moved, ex.segan_edit(6, 1, 2, 3, 0.0))
    assert np.array_equal(ex.segan_edit(6, 1, 2, 3, 0.0), ex.seed_grid("6"))  # adding 0 sigma: the seed's image
    capsys.readouterr()
    traverse.main([f"ckpt={segan_ckpt}", "table=true"])
    printed = [ln.split()[:8] for ln in capsys.readouterr().out.splitlines()[1:]]
    rows = ex.subspace_table()
    assert len(rows) == 8 and [[str(v) for v in r[:7]] + [r[7].split()[0]] for r in rows] == printed
    assert ex.subspaces_of(1) == ex.describe()["subspaces"][1]
    with pytest.raises(ValueError, match="subspace=7 does not exist in layer 1"):
        ex.segan_edit(6, 1, 7, 0, 1.0)


def test_projection_streams_and_ends_with_project_py_result(ex, segan_ckpt, lpips_net, tmp_path):
    target = tmp_path / "face.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).save(target)
    cfg = project.parse_args([f"ckpt={segan_ckpt}", f"target={target}", "mode=w_then_w_plus", "steps=6",
                              "frame_every=2", "video=[]", "w_stats_n=10000", f"out={tmp_path / 'cli'}"])  # fmt: skip
    summary = project.project(cfg, lpips=lpips_net)
    shown, notes = ex.projection_target(target)
    assert shown.shape == (R, R, 3) and any("center-cropped" in n for n in notes)
    updates = list(ex.project(target, "w_then_w_plus", 6, frame_every=2))
    assert [u.step for u in updates] == [1, 3, 5, 6, 6] and updates[-1].latents.is_file()
    final = updates[-1].image
    assert np.array_equal(cell(final, 0, 0), shown)
    assert np.array_equal(cell(final, 0, 1), png(tmp_path / "cli" / "face.png"))  # target | projection
    ref = summary["targets"][0]
    assert updates[-1].metrics == pytest.approx({k: ref[k] for k in updates[-1].metrics})
    assert set(updates[-1].metrics) >= {"lpips", "psnr", "w_avg_distance", "layer_spread"}
    generate.main([f"ckpt={segan_ckpt}", f"latents={updates[-1].latents}", f"out={tmp_path / 'gen'}"])
    assert np.array_equal(png(tmp_path / "gen" / "face.png"), png(tmp_path / "cli" / "face.png"))

    run = ex.project(target, "w", 500)
    next(run)
    ex.cancel()
    with pytest.raises(Cancelled):
        list(run)


def test_uploads_are_checked_and_decoded_like_training_data(ex, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="upload='.*broken.png' is not a readable image"):
        ex.projection_target(bad)
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(big)
    with pytest.raises(ValueError, match="big.png: 0.0 MB; uploads are limited"):
        read_upload(big, limit=10)
    assert read_upload(big).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="not a colorization model"):
        ex.colorize(big)
    with pytest.raises(ValueError, match="seeds='0-999': 1000 seeds; at most 64"):
        ex.seed_grid("0-999")
    with pytest.raises(ValueError, match="seeds='x'"):
        ex.seed_grid("x")


def test_colorizer_shows_gray_colorized_original_and_psnr(chroma_ckpt, tmp_path):  # noqa: F811
    photos = tmp_path / "in"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(photos / "color.png")
    Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8)).save(photos / "gray.png")
    colorize.main([f"ckpt={chroma_ckpt}", f"input={photos}", f"out={tmp_path / 'out'}"])
    ex = Explorer.open(chroma_ckpt, tmp_path / "ws")
    assert ex.colorizes and ex.describe()["family"] == "ChromaGAN"
    gray, result, original, db = ex.colorize(photos / "color.png")
    assert np.array_equal(result, png(tmp_path / "out" / "color.png"))
    assert np.array_equal(original, png(photos / "color.png"))
    assert np.ptp(gray.astype(int), axis=2).max() <= 2  # ab = 0: neutral gray (Lab -> RGB rounding)
    assert not np.array_equal(gray, result)
    expected = 10 * np.log10(1 / np.mean((result / 255.0 - original / 255.0) ** 2))
    assert db == pytest.approx(expected, abs=0.05)
    _, result, original, db = ex.colorize(photos / "gray.png")
    assert original is None and db is None and np.array_equal(result, png(tmp_path / "out" / "gray.png"))


def test_cli_refuses_bad_input(tmp_path):
    with pytest.raises(SystemExit, match="ckpt=PATH is required"):
        explore.main([])
    with pytest.raises(SystemExit, match="no such checkpoint file"):
        explore.main([f"ckpt={tmp_path / 'missing.ckpt'}"])
    with pytest.raises(SystemExit, match=r"port=0: expected an integer in 1\.\.65535"):
        explore.main(["ckpt=x", "port=0"])
    with pytest.raises(SystemExit, match="stats_n='many': expected an integer"):
        explore.main(["ckpt=x", "stats_n=many"])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="device='cuda': CUDA is not available"):
            explore.main([f"ckpt={tmp_path}", "device=cuda"])


# ----------------------------------------------------------------------------------------------
# The server: localhost, only its own files, a workspace that goes away.


@contextlib.contextmanager
def running(segan_ckpt, lpips_net, host="127.0.0.1"):
    with workspace() as ws:
        explorer = Explorer.open(segan_ckpt, ws, lpips=lpips_net, stats_n=200)
        port = free_port()
        demo = launch(explorer, host, port, block=False)
        try:
            yield f"http://127.0.0.1:{port}", ws
        finally:
            demo.close()
    assert not ws.exists()


def test_server_serves_only_its_workspace_and_removes_it(segan_ckpt, lpips_net, capsys):
    with running(segan_ckpt, lpips_net) as (base, ws):
        with urllib.request.urlopen(base, timeout=30) as r:
            assert r.status == 200 and b"gamut explorer" in r.read()
        for path in (segan_ckpt, Path(__file__), Path("/etc/passwd")):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{base}/gradio_api/file={path}", timeout=30)
            assert err.value.code in (403, 404), path
    assert "not only on this machine" not in capsys.readouterr().out
    # any other address is announced
    with running(segan_ckpt, lpips_net, host="0.0.0.0"):
        pass
    assert "serving on 0.0.0.0" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# The page in headless Chromium (installed by .ci/run, as for the dashboard test).


def shot(page, path: Path, selector: str) -> np.ndarray:
    """A screenshot of the page (kept under ``path``) and of the image element ``selector`` as an array."""
    page.screenshot(path=str(path))
    import io

    return np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB"))


@pytest.mark.slow
@needs_chromium
def test_page_in_headless_chromium(segan_ckpt, lpips_net, tmp_path):
    """The seed grid draws, a SEGAN slider move redraws the edited image, a corrupt upload shows an error."""
    playwright = pytest.importorskip("playwright.sync_api")
    with running(segan_ckpt, lpips_net) as (base, _), playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(base)
            page.wait_for_selector("#seed-grid img", timeout=60_000)
            grid = shot(page, tmp_path / "seeds.png", "#seed-grid img")
            assert grid.std() > 5  # an image, not an empty panel

            page.get_by_role("tab", name="SEGAN subspaces").click()
            page.wait_for_selector("#segan-image img", timeout=60_000)
            before_src = page.locator("#segan-image img").get_attribute("src")
            before = shot(page, tmp_path / "segan_before.png", "#segan-image img")
            for elem, value in (("#segan-layer", "1"), ("#segan-dim", "3"), ("#segan-value", "4")):
                box = page.locator(f"{elem} input[type=number]")
                box.fill(value)
                box.press("Enter")
            page.wait_for_function(
                "s => document.querySelector('#segan-image img').src != s", arg=before_src, timeout=60_000
            )
            page.wait_for_load_state("networkidle")
            after = shot(page, tmp_path / "segan_after.png", "#segan-image img")
            assert before.shape == after.shape and np.abs(before.astype(int) - after.astype(int)).mean() > 1

            page.get_by_role("tab", name="Projection").click()
            bad = tmp_path / "corrupt.png"
            bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
            page.locator("#project-upload input[type=file]").set_input_files(str(bad))
            page.wait_for_selector("text=is not a readable image", timeout=60_000)
            page.screenshot(path=str(tmp_path / "error.png"))
        finally:
            browser.close()
