"""Sizes of the form (b_h * 2**k, b_w * 2**k): the rule, refusals with the nearest valid sizes, the
unchanged networks at today's sizes (against tests/data/size_reference.pt), G's and D's shapes
through every block at 24x24, 48x80 and 96x160, training steps and bit-exact resume at 48x80."""

from __future__ import annotations

import pytest
import torch

from src.modules.stylegan2.discriminator import Discriminator
from src.modules.stylegan2.generator import Generator
from src.train import train
from tests import size_reference
from tests.test_train import _assert_same_state, _final_state

# ------------------------------------------------------------------------------------------------
# the rule


@pytest.mark.parametrize(
    ("size", "base"),
    [
        ((256, 256), (4, 4, 6)),
        ((1024, 1024), (4, 4, 8)),
        ((4, 4), (4, 4, 0)),
        ((64, 128), (4, 8, 4)),
        ((64, 256), (4, 16, 4)),
        ((24, 24), (3, 3, 3)),
        ((48, 80), (3, 5, 4)),
        ((96, 160), (3, 5, 5)),
        ((28, 28), (7, 7, 2)),
        ((48, 72), (6, 9, 3)),
    ],
)
def test_base_and_doublings(size, base):
    from src.utils.resolution import base_shape, parse_resolution

    assert base_shape(*size) == base
    assert parse_resolution(list(size)) == size


@pytest.mark.parametrize(
    ("value", "nearest"),
    [(36, "Nearest valid: 32, 40, 28"), (25, "Nearest valid: 24, 28, 20"), ([27, 40], "[28, 40]")],
)
def test_sizes_without_a_valid_form_are_refused_with_the_nearest(value, nearest):
    from src.utils.resolution import parse_resolution

    with pytest.raises(ValueError, match=r"data.resolution=.*short base side of 3 to 7 px") as e:
        parse_resolution(value)
    assert nearest in str(e.value)


def test_every_suggested_size_is_valid():
    from src.utils.resolution import nearest_valid, parse_resolution

    for size in ((36, 36), (100, 100), (27, 40), (99, 160)):
        for h, w in nearest_valid(*size):
            parse_resolution([h, w])


# ------------------------------------------------------------------------------------------------
# today's sizes keep today's networks


@pytest.mark.parametrize("key", [f"{h}x{w}" for h, w in size_reference.SIZES])
def test_power_of_two_and_4_2k_sizes_are_unchanged(key):
    stored = torch.load(size_reference.FILE, weights_only=True)[key]
    now = size_reference.outputs(tuple(int(s) for s in key.split("x")))
    assert int(now["g_params"]) == int(stored["g_params"]) and int(now["d_params"]) == int(stored["d_params"])
    torch.testing.assert_close(now["images"], stored["images"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(now["logits"], stored["logits"], atol=1e-5, rtol=1e-5)
    assert float(now["image_sum"]) == pytest.approx(float(stored["image_sum"]), rel=1e-6)


# ------------------------------------------------------------------------------------------------
# new sizes: shapes through every block


@pytest.mark.parametrize(("size", "base", "k"), [((24, 24), (3, 3), 3), ((48, 80), (3, 5), 4), ((96, 160), (3, 5), 5)])
def test_generator_and_discriminator_shapes_through_every_block(size, base, k):
    net = dict(channel_base=512, channel_max=32)
    G = Generator(z_dim=16, w_dim=16, map_depth=1, resolution=size, **net)
    D = Discriminator(resolution=size, mbstd_group=2, **net)
    blocks = G.synthesis.blocks
    assert len(blocks) == k + 1 and tuple(blocks[0].const.shape[1:]) == base
    seen: list[tuple[int, int]] = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append(tuple(o[0].shape[-2:]))) for b in blocks]
    images = G(torch.randn(2, 16), None)
    for h in hooks:
        h.remove()
    assert seen == [(base[0] << i, base[1] << i) for i in range(k + 1)]
    assert images.shape == (2, 3, *size)
    seen.clear()
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append(tuple(o[0].shape[-2:]))) for b in D.blocks]
    logits = D(images, None)
    assert seen == [(base[0] << i, base[1] << i) for i in range(k - 1, -1, -1)]
    assert logits.shape == (2, 1)
    fc = D.epilogue.fc.weight.shape[1]  # conv, then a fully connected layer over b_h * b_w * C
    assert fc == base[0] * base[1] * D.epilogue.conv.weight.shape[0]
    logits.sum().backward()
    assert all(p.grad is not None for p in D.parameters())


# ------------------------------------------------------------------------------------------------
# training at 48x80


def test_training_steps_and_bit_exact_resume_at_48x80(tiny_cfg, log_dir):
    common = ["data.resolution=[48,80]", "model.loss.r1_interval=2", "model.loss.pl_interval=3"]
    train(tiny_cfg("trainer.max_steps=4", *common, run_name="straight"))
    train(tiny_cfg("trainer.max_steps=2", *common, run_name="split"))
    train(tiny_cfg("trainer.max_steps=4", "ckpt_path=last", *common, run_name="split"))
    straight = _final_state(log_dir, "straight")
    assert straight["state_dict"]["G.synthesis.blocks.0.const"].shape[1:] == (3, 5)
    _assert_same_state(straight, _final_state(log_dir, "split"))


@pytest.mark.parametrize("size", ["24", "[96,160]"])
def test_training_steps_at_other_sizes(tiny_cfg, log_dir, size):
    metrics = train(tiny_cfg("trainer.max_steps=2", f"data.resolution={size}", run_name="s"))
    assert all(v == v for v in metrics.values())  # finite losses logged


# ------------------------------------------------------------------------------------------------
# the visual tools at a 3x5-based size


@pytest.fixture(scope="module")
def run_24x40(tmp_path_factory):
    from tests.conftest import TINY, compose_cfg, logs_in

    log_dir = tmp_path_factory.mktemp("logs")
    with logs_in(log_dir):
        train(compose_cfg([*TINY, "logger=none", "run_name=r", "trainer.max_steps=2", "data.resolution=[24,40]"]))
    return log_dir / "quickstart" / "r" / "checkpoints" / "last.ckpt"


def test_views_and_projection_at_24x40(run_24x40, weights_dir, tmp_path):
    import numpy as np
    from PIL import Image

    from src.tools import project, visualize
    from src.visualize.video import read_video

    ckpt = run_24x40
    visualize.main(["layers", f"ckpt={ckpt}", "seeds=0-1", f"out={tmp_path}"])
    visualize.main(["mix", f"ckpt={ckpt}", "rows=0-1", "cols=5-6", "layers=0-1", f"out={tmp_path}"])
    assert np.asarray(Image.open(tmp_path / "mix.png")).shape == (3 * 24, 3 * 40, 3)
    visualize.main(["noise", f"ckpt={ckpt}", "variants=2", f"out={tmp_path}"])
    assert np.asarray(Image.open(tmp_path / "noise.png")).shape[1] == 3 * 40
    visualize.main(["interp", f"ckpt={ckpt}", "seeds=0-1", "frames=3", "scale=1", "formats=[gif]", f"out={tmp_path}"])
    assert read_video(tmp_path / "interp.gif")[0].shape == (24, 40, 3)
    target = tmp_path / "t.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (30, 50, 3), dtype=np.uint8)).save(target)
    out = tmp_path / "proj"
    project.main(
        [
            f"ckpt={ckpt}",
            f"target={target}",
            "mode=w_plus",
            "steps=4",
            f"out={out}",
            f"weights_dir={weights_dir}",
            "w_stats_n=100",
        ]
    )
    assert np.asarray(Image.open(out / "t.png")).shape == (24, 40, 3)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_segan_modes_train_at_48x80(tiny_cfg, log_dir, mode):
    metrics = train(
        tiny_cfg(
            "model=segan", f"model.mode={mode}", "data.resolution=[48,80]", "trainer.max_steps=2", run_name=f"m{mode}"
        )
    )
    assert all(v == v for v in metrics.values())


@pytest.mark.parametrize(("colorspace", "size"), [("gray", "24"), ("rgba", "[48,80]"), ("lab", "[96,160]")])
def test_colour_spaces_at_new_sizes(tiny_cfg, log_dir, colorspace, size):
    metrics = train(
        tiny_cfg(f"colorspace={colorspace}", f"data.resolution={size}", "trainer.max_steps=1", run_name="c")
    )
    assert all(v == v for v in metrics.values())
