"""Generator views, videos, the D-scores callback and inference exports (issue 7), on tiny networks, CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.checkpoints.export import export_torchscript
from src.checkpoints.load import load_inference
from src.tools import export, visualize
from src.visualize.video import read_video, write_video
from tests.test_project import run  # noqa: F401  (the shared tiny training run)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(run):  # noqa: F811
    return load_inference(run / "checkpoints" / "last.ckpt")


def test_layer_contributions_sum_to_the_final_image(model):
    from src.visualize.layers import layer_contributions
    from src.visualize.render import seeds_to_w

    ws = seeds_to_w(model, [0, 1])
    contrib, running, final = layer_contributions(model.G.synthesis, ws)
    assert contrib.shape == (len(model.G.synthesis.blocks), 2, 3, 16, 32)
    assert torch.allclose(contrib.sum(0), final, atol=1e-5)
    assert torch.allclose(running[-1], final, atol=1e-5)
    assert torch.equal(final, model.synthesize(ws))
    assert all(c.abs().amax() > 0 for c in contrib)  # every block adds something


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_video_has_the_requested_frame_count(tmp_path, fmt):
    frames = [np.random.RandomState(i).randint(0, 255, (15, 21, 3), dtype=np.uint8) for i in range(7)]
    back = read_video(write_video(frames, tmp_path / f"v.{fmt}", fps=12))
    assert len(back) == 7 and back[0].shape[:2] in ((15, 21), (16, 22))  # mp4 pads odd sides
    with pytest.raises(ValueError, match="video format 'avi'"):
        write_video(frames, tmp_path / "v.avi")


def test_interp_cli_writes_looping_videos_with_frames_per_keyframe(run, tmp_path):  # noqa: F811
    out = tmp_path / "interp"
    visualize.main(
        [
            "interp",
            f"ckpt={run / 'checkpoints' / 'last.ckpt'}",
            "seeds=0-3",
            "frames=5",
            "grid=[2,1]",
            "space=z",
            "scale=1",
            f"out={out}",
        ]
    )
    mp4, gif = read_video(out / "interp.mp4"), read_video(out / "interp.gif")
    assert len(mp4) == len(gif) == 2 * 5  # 2 keyframes per cell, looping: 2 transitions x 5 frames
    assert gif[0].shape == (16, 64, 3)  # two cells side by side


def test_interpolation_paths_hit_the_keyframes():
    from src.visualize.latent_paths import keyframe_path

    keys = torch.randn(3, 4)
    path = keyframe_path(keys, 4, "w")
    assert path.shape == (12, 4) and torch.equal(path[0], keys[0]) and torch.allclose(path[4], keys[1])
    zpath = keyframe_path(keys, 4, "z", loop=False)
    assert zpath.shape == (9, 4) and torch.allclose(zpath[-1], keys[-1])


def test_style_mixing_takes_the_chosen_layers_from_the_columns(model, tmp_path):
    from src.visualize.render import render_rgb, seeds_to_w
    from src.visualize.style_mixing import mix, parse_layers

    rows, cols = seeds_to_w(model, [0, 1]), seeds_to_w(model, [5, 6, 7])
    all_layers = parse_layers(f"0-{model.G.num_ws - 1}", model.G.num_ws)
    assert torch.equal(mix(rows, cols, all_layers)[:3], cols)
    mixed = mix(rows, cols, parse_layers("0-1", model.G.num_ws))
    assert torch.equal(mixed[4, 2:], rows[1, 2:]) and torch.equal(mixed[4, :2], cols[1, :2])
    with pytest.raises(ValueError, match="w indices must lie in 0..5"):
        parse_layers("4-9", model.G.num_ws)
    visualize.main(["mix", f"ckpt={model.source}", "rows=0-1", "cols=5-7", "layers=0-1", f"out={tmp_path}"])
    grid = np.asarray(Image.open(tmp_path / "mix.png"))
    assert grid.shape == (3 * 16, 4 * 32, 3)
    ref = (render_rgb(model, cols)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(grid[:16, 32:64], ref)  # the header row shows the column seeds


def test_noise_view_changes_only_where_noise_acts(model, tmp_path):
    from src.visualize.noise import noise_variants
    from src.visualize.render import seeds_to_w

    with torch.no_grad():
        for layer in model.G.synthesis.modules():
            if hasattr(layer, "noise_strength"):
                layer.noise_strength.fill_(0.5)
    variants = noise_variants(model, seeds_to_w(model, [0]), variants=3)
    assert len(variants) == sum(1 for m in model.G.synthesis.modules() if hasattr(m, "noise_const"))
    assert all(v.shape == (3, 3, 16, 32) and v.std(0).amax() > 0 for v in variants.values())
    visualize.main(["noise", f"ckpt={model.source}", "variants=2", f"out={tmp_path}"])
    assert np.asarray(Image.open(tmp_path / "noise.png")).shape == (len(variants) * 16, 3 * 32, 3)


def test_layers_cli_and_progress_video_from_the_runs_grids(run, tmp_path):  # noqa: F811
    visualize.main(["layers", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "seeds=0", f"out={tmp_path}"])
    assert np.asarray(Image.open(tmp_path / "layers.png")).shape == (2 * 16, 3 * 32, 3)  # 3 blocks at 16x32
    grids = sorted((run / "samples").glob("fakes_kimg*.png"))
    assert len(grids) >= 3
    visualize.main(["progress", f"run={run}", "hold_last=2", f"out={tmp_path}"])
    assert len(read_video(tmp_path / "progress.mp4")) == len(grids) + 2
    assert len(read_video(tmp_path / "progress.gif")) == len(grids)  # a GIF holds the last frame by its duration
    with Image.open(tmp_path / "progress.gif") as im:
        im.seek(len(grids) - 1)
        assert im.info["duration"] == 3 * 250
    with pytest.raises(SystemExit, match="no samples/fakes_kimg"):
        visualize.main(["progress", f"run={tmp_path}", f"out={tmp_path}"])
    with pytest.raises(SystemExit, match="first argument must be a view, one of mix, interp"):
        visualize.main(["bogus"])


def test_d_scores_callback_logs_fixed_reals_through_training(run, tmp_path):  # noqa: F811
    from src.visualize.d_scores import read_table

    rows = read_table(run / "d_scores.csv")
    assert len(rows) >= 3 and [r["kimg"] for r in rows] == sorted(r["kimg"] for r in rows)
    assert all({"real_0", "real_3", "fake_mean"} <= set(r) for r in rows)
    assert rows[0]["real_0"] != rows[-1]["real_0"]  # D changed while it trained
    assert (run / "d_scores.png").stat().st_size > 0
    visualize.main(["dscores", f"run={run}", f"out={tmp_path}"])
    assert Image.open(tmp_path / "d_scores.png").size[0] > 100


def test_safetensors_export_reproduces_the_checkpoint_exactly(run, tmp_path):  # noqa: F811
    ckpt = run / "checkpoints" / "last.ckpt"
    export.main([f"ckpt={ckpt}", f"out={tmp_path / 'G.safetensors'}"])
    a, b = load_inference(ckpt), load_inference(tmp_path / "G.safetensors")
    z = torch.randn(3, a.G.z_dim, generator=torch.Generator().manual_seed(0))
    c = a.labels_for(3, None)  # the quickstart is conditional: each seed's class from the recorded frequencies
    assert torch.equal(c, b.labels_for(3, None))  # the export records them too
    assert torch.equal(a.sample(z, c, psi=0.7), b.sample(z, c, psi=0.7))
    # and the tools take the export as ckpt=
    visualize.main(["layers", f"ckpt={tmp_path / 'G.safetensors'}", "seeds=0", f"out={tmp_path / 'l'}"])
    assert (tmp_path / "l" / "layers.png").is_file()


def test_channels_last_loading_gives_the_same_images(run):  # noqa: F811
    """The inference tools load G channels-last (faster on CPU); the images stay those of the plain G."""
    ckpt = run / "checkpoints" / "last.ckpt"
    plain, fast = load_inference(ckpt), load_inference(ckpt, channels_last=True)
    assert fast.G.synthesis.blocks[1].conv0.weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.G.synthesis.blocks[1].conv0.weight.is_contiguous(memory_format=torch.channels_last)
    z = torch.randn(3, plain.G.z_dim, generator=torch.Generator().manual_seed(0))
    c = plain.labels_for(3, None)
    torch.testing.assert_close(fast.sample(z, c, psi=0.7), plain.sample(z, c, psi=0.7), atol=1e-5, rtol=1e-5)


def test_torchscript_export_matches_the_generator(model, tmp_path):
    path = export_torchscript(model.G, tmp_path / "G.pt")
    traced = torch.jit.load(str(path))
    z = torch.randn(5, model.G.z_dim, generator=torch.Generator().manual_seed(1))  # another batch than traced
    c = model.labels_for(5, None)  # conditional (the quickstart): f(z, psi, c)
    for psi in (1.0, 0.6):
        ref = model.sample(z, c, psi=psi)
        assert torch.allclose(traced(z, torch.tensor(psi), c), ref, atol=1e-5)
