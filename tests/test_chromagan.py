"""ChromaGAN (pvitoria/ChromaGAN): shapes, losses, color conventions, metrics, a fit with exact
resume, validation against the gray baseline, and the colorize CLI."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from src.colorspaces import get_colorspace
from src.datamodules.imagenet_classes import IMAGENET_WNIDS
from src.metrics.colorization import ColorizationMetrics, per_image_psnr
from src.modules.chromagan import losses
from src.modules.chromagan.color import AB_NORMS, ab_to_unit, join_lab, split_lab, unit_to_ab
from src.modules.chromagan.discriminator import PatchCritic
from src.modules.chromagan.generator import ColorizationGenerator
from src.modules.chromagan.layers import same_padding
from src.pretrained.weights import WEIGHTS, MissingWeightsError
from tests.conftest import compose_cfg, logs_in
from tests.test_tinyimagenet import make_tiny_imagenet

ROOT = Path(__file__).resolve().parents[1]
LAB = get_colorspace("lab")


# ------------------------------------------------------------------------------------------------
# networks


def test_generator_and_critic_shapes_at_224():
    """Official G/D shapes at 224 with the paper's widths (class FCs shrunk: they do not change shapes)."""
    torch.manual_seed(0)
    g = ColorizationGenerator((224, 224), num_classes=1000, class_fc=(64,)).eval()
    with torch.no_grad():
        ab, logits, f = g(torch.rand(2, 1, 224, 224), return_features=True)
    assert f["trunk"].shape == (2, 512, 28, 28)
    assert f["global_map"].shape == (2, 512, 7, 7)
    assert f["global_vec"].shape == (2, 256)
    assert f["mid"].shape == (2, 256, 28, 28)
    assert f["fused"].shape == (2, 512, 28, 28)
    assert ab.shape == (2, 2, 224, 224) and 0 <= ab.min() and ab.max() <= 1
    # predicted at 112 and block-upsampled: every 2x2 block is constant (as the official code)
    assert torch.equal(ab[..., 0::2, 0::2], ab[..., 1::2, 1::2])
    probs = logits.softmax(1)
    assert logits.shape == (2, 1000) and torch.allclose(probs.sum(1), torch.ones(2))
    d = PatchCritic()
    assert d(torch.rand(2, 3, 224, 224)).shape == (2, 1, 28, 28)


def test_parameter_counts_match_the_paper():
    """G about 171.2M (class FCs 123.6M, global FCs 26.3M, global convs 9.4M, trunk 7.6M); D 2.76M."""
    with torch.device("meta"):
        g = ColorizationGenerator()
        d = PatchCritic()

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert round(count(g) / 1e5) == 1712
    assert round(count(g.global_branch.classes) / 1e5) == 1236
    assert round(count(g.global_branch.features) / 1e5) == 263
    assert round(count(g.global_branch.convs) / 1e5) == 94
    assert round(count(g.trunk) / 1e5) == 76
    assert round(count(d) / 1e4) == 276


def test_trunk_layout_matches_torchvision_vgg16():
    ours = ColorizationGenerator((32, 32), num_classes=3, global_fc=(8,), class_fc=(8,)).trunk
    ref = torchvision.models.vgg16(weights=None).features[:23]
    assert [type(m) for m in ours] == [type(m) for m in ref]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


@pytest.mark.parametrize(
    "size,k,s,pads", [(28, 4, 1, (1, 2)), (224, 4, 2, (1, 1)), (28, 3, 2, (0, 1)), (7, 3, 1, (1, 1))]
)
def test_tf_same_padding(size, k, s, pads):
    assert same_padding(size, k, s) == pads


def test_critic_options_and_bad_values():
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in PatchCritic(norm="batch").modules())
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) for m in PatchCritic().modules())
    assert PatchCritic(leaky_slope=0.2).net[1].negative_slope == 0.2
    with pytest.raises(ValueError, match="model.critic.norm='layer'"):
        PatchCritic(norm="layer")
    with pytest.raises(ValueError, match="multiples of 8"):
        ColorizationGenerator((100, 100))
    with pytest.raises(ValueError, match="model.block_order"):
        ColorizationGenerator((32, 32), block_order="bn_conv")
    with pytest.raises(ValueError, match="model.vgg_input_norm"):
        ColorizationGenerator((32, 32), vgg_input_norm="caffe")
    with pytest.raises(ValueError, match="model.fc_act"):
        ColorizationGenerator((32, 32), fc_act="tanh")


def test_block_order_and_fc_activations():
    g = ColorizationGenerator(
        (32, 32), num_classes=3, width=0.125, global_fc=(8, 4), class_fc=(8,), block_order="conv_bn_relu", fc_act="relu"
    )
    block = g.mid[0]
    assert isinstance(block[1], torch.nn.BatchNorm2d) and isinstance(block[2], torch.nn.ReLU)
    assert block[1].momentum == 0.01 and block[1].eps == 1e-3
    assert any(isinstance(m, torch.nn.ReLU) for m in g.global_branch.classes)
    official = ColorizationGenerator((32, 32), num_classes=3, width=0.125, global_fc=(8, 4), class_fc=(8,))
    assert isinstance(official.mid[0][1], torch.nn.ReLU)  # conv -> ReLU -> BN
    assert not any(isinstance(m, torch.nn.ReLU) for m in official.global_branch.classes)


def test_module_passes_generator_options_by_keyword_and_config_checks_them():
    """ChromaGAN hands its generator's options on by name (a reordered signature cannot shift them),
    records them for ``load_module``, and config validation knows them as ChromaGAN's keys."""
    from omegaconf import OmegaConf

    from src.modules.chromagan.module import ChromaGAN
    from src.utils.validation import ConfigError, check_model_keys

    m = ChromaGAN(
        resolution=32,
        num_classes=3,
        width=0.125,
        trunk_pretrained=False,
        global_fc=(8, 4),
        class_fc=(8,),
        bn_eps=0.5,
        block_order="conv_bn_relu",
        loss=dict(lambda_kl=0.0),
    )
    assert m.G.mid[0][1].eps == 0.5 and isinstance(m.G.mid[0][1], torch.nn.BatchNorm2d)
    assert tuple(m.hparams.global_fc) == (8, 4) and m.hparams.bn_eps == 0.5
    cfg = compose_cfg(["model=chromagan", "colorspace=lab", "data.resolution=32", "model.bn_eps=0.5"])
    check_model_keys(cfg)  # a generator option is a ChromaGAN key
    OmegaConf.set_struct(cfg, False)
    cfg.model.mbstd_group = 4  # a StyleGAN2 key
    with pytest.raises(ConfigError, match="model.mbstd_group: not option"):
        check_model_keys(cfg)


# ------------------------------------------------------------------------------------------------
# color conventions


@pytest.mark.parametrize("norm", sorted(AB_NORMS))
def test_ab_normalisations_invert(norm):
    ab = torch.randn(3, 2, 5, 7) * 60
    assert torch.allclose(unit_to_ab(ab_to_unit(ab, norm), norm), ab, atol=1e-4)
    rgb = torch.rand(2, 3, 16, 16)
    lab = LAB.encode(rgb)
    l_in, ab_n = split_lab(lab, norm)
    assert l_in.shape == (2, 1, 16, 16) and 0 <= l_in.min() and l_in.max() <= 1
    assert (ab_n >= 0).all() and (ab_n <= 1).all()  # the sRGB gamut fits the sigmoid's range
    assert torch.allclose(join_lab(l_in, ab_n, norm), lab, atol=1e-5)


def test_ab_normalisation_constants():
    gray = torch.zeros(1, 2, 1, 1)
    assert torch.allclose(ab_to_unit(gray, "opencv"), torch.full_like(gray, 128 / 255))
    assert torch.allclose(ab_to_unit(gray, "minmax").flatten(), torch.tensor([87 / 186, 108 / 203]))
    with pytest.raises(ValueError, match="model.ab_norm='hsv'"):
        ab_to_unit(gray, "hsv")


# ------------------------------------------------------------------------------------------------
# losses


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic():
    torch.manual_seed(0)
    w = torch.randn(2, 8, 8)
    w = w / w.norm()

    def critic(lab):  # a linear functional of ab, unit-norm weights; L enters but is not differentiated
        return (lab[:, 1:] * w).sum(dim=(1, 2, 3)).view(-1, 1, 1, 1) + lab[:, :1].mean()

    l_in, real, fake = torch.rand(4, 1, 8, 8), torch.rand(4, 2, 8, 8), torch.rand(4, 2, 8, 8)
    assert losses.gradient_penalty(critic, l_in, real, fake).item() == pytest.approx(0, abs=1e-10)

    def critic2(lab):  # twice the norm: penalty (1 - 2)^2 = 1
        return 2 * critic(lab)

    assert losses.gradient_penalty(critic2, l_in, real, fake).item() == pytest.approx(1, abs=1e-5)


def test_gradient_penalty_interpolates_ab_per_sample():
    seen = {}

    def critic(lab):
        seen["lab"] = lab
        return lab[:, 1:].sum(dim=(1, 2, 3))

    l_in, real, fake = torch.rand(3, 1, 4, 4), torch.ones(3, 2, 4, 4), torch.zeros(3, 2, 4, 4)
    alpha = torch.tensor([0.0, 0.25, 1.0])
    losses.gradient_penalty(critic, l_in, real, fake, alpha=alpha)
    ab_hat = seen["lab"][:, 1:]
    assert torch.allclose(ab_hat.flatten(1).mean(1), alpha)
    assert torch.equal(seen["lab"][:, :1], l_in)


def test_class_kl_is_kl_teacher_student_batchmean():
    t, s = torch.randn(4, 200), torch.randn(4, 200)
    assert losses.class_kl(t, t).item() == pytest.approx(0, abs=1e-6)
    pt, ps = t.softmax(1), s.softmax(1)
    expected = (pt * (pt.log() - ps.log())).sum(1).mean()
    assert losses.class_kl(s, t).item() == pytest.approx(expected.item(), rel=1e-5)


def test_wasserstein_terms():
    real, fake = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -1.0)
    assert losses.critic_wasserstein(real, fake).item() == -3.0
    assert losses.generator_adversarial(fake).item() == 1.0
    assert losses.color_l2(torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)).item() == 1.0


# ------------------------------------------------------------------------------------------------
# metrics


def test_psnr_of_identical_images_is_infinite_not_an_error():
    x = torch.rand(2, 3, 8, 8)
    m = ColorizationMetrics()
    m.update(x, x, gray=x * 0.5)
    out = m.compute()
    assert math.isinf(out["psnr"]) and out["psnr"] > 0
    assert out["ssim"].item() == pytest.approx(1.0, abs=1e-5)
    assert math.isfinite(out["psnr_gray"]) and math.isinf(out["psnr_gain"])


def test_psnr_protocols_on_small_tensors():
    target = torch.full((1, 3, 4, 4), 0.5)
    pred = target + 0.1
    assert per_image_psnr(pred, target).item() == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)
    # jeniasivets' per-image peak: max(gt)^2 = 0.25 -> 10 log10(0.25 / 0.01)
    assert per_image_psnr(pred, target, "max_gt").item() == pytest.approx(10 * math.log10(25), abs=1e-4)
    m = ColorizationMetrics()
    m.update(pred, target, gray=target + 0.2)
    out = m.compute()
    assert out["psnr_gray"].item() == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-3)
    assert out["psnr_gain"].item() == pytest.approx(20.0 - 10 * math.log10(25), abs=1e-3)


# ------------------------------------------------------------------------------------------------
# training through the real configs


@pytest.fixture(scope="module")
def vgg_dir(tmp_path_factory) -> Path:
    """A randomly initialised torchvision VGG-16 under its upstream file name (trunk and teacher)."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), d / WEIGHTS["vgg16"].filename)
    return d


TINY_CHROMA = [
    "data.resolution=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "model.width=0.0625",
    "model.global_fc=[16,8]",
    "model.class_fc=[16]",
    "model.critic.width=0.0625",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
    "trainer.val_check_interval=2",
    "callbacks.checkpoint.every_kimg=0.008",
    "callbacks.sample_grid.every_kimg=0.008",
    "callbacks.sample_grid.num=4",
]


def _cfg(tin_root, vgg_dir, *overrides, run_name="test", logger="none"):
    return compose_cfg(
        [
            "experiment=chromagan_tinyimagenet",
            f"data.root={tin_root}",
            f"paths.weights_dir={vgg_dir}",
            "model.num_classes=3",
            "model.trunk_pretrained=false",
            *TINY_CHROMA,
            f"logger={logger}",
            f"run_name={run_name}",
            *overrides,
        ]
    )


@pytest.fixture
def tin_root(tmp_path) -> Path:
    return make_tiny_imagenet(tmp_path, per_class=4)


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_fit_validates_logs_grids_and_resumes_exactly(log_dir, tin_root, vgg_dir):
    from src.train import train

    metrics = train(_cfg(tin_root, vgg_dir, "trainer.max_steps=4", run_name="straight"))
    for key in (
        "Loss/G",
        "Loss/D",
        "Loss/color",
        "Loss/kl",
        "Loss/adv",
        "Loss/gp",
        "val/psnr",
        "val/psnr_gray",
        "val/psnr_peak",
        "val/ssim",
        "val/ssim_gray",
        "val/psnr_gain",
    ):
        assert key in metrics and np.isfinite(metrics[key]), key
    straight = log_dir / "chromagan_tinyimagenet" / "straight"
    grids = sorted((straight / "samples").glob("colorized_kimg*.png"))
    assert grids and Image.open(grids[-1]).size == (32 * 6, 32 * 2)  # 4 images: 2 rows of gray|pred|true x2
    ckpt = _state(straight / "checkpoints" / "last.ckpt")
    assert ckpt["gamut"]["iteration"] == 4 and ckpt["gamut"]["cur_nimg"] == 16
    assert not any(k.startswith("_teacher") for k in ckpt["state_dict"])  # the frozen teacher is not saved
    assert ckpt["state_dict"]["class_columns"].tolist() == [
        IMAGENET_WNIDS.index(w) for w in ("n01641577", "n01443537", "n01629819")
    ]

    train(_cfg(tin_root, vgg_dir, "trainer.max_steps=2", run_name="resumed"))
    train(_cfg(tin_root, vgg_dir, "trainer.max_steps=4", "ckpt_path=last", run_name="resumed"))
    resumed = _state(log_dir / "chromagan_tinyimagenet" / "resumed" / "checkpoints" / "last.ckpt")
    assert resumed["gamut"]["iteration"] == 4
    for k, v in ckpt["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k
    for a, b in zip(ckpt["optimizer_states"], resumed["optimizer_states"]):
        for sa, sb in zip(a["state"].values(), b["state"].values()):
            assert all(torch.equal(sa[n], sb[n]) for n in sa)


def test_training_orders_and_critic_ratio(log_dir, tin_root, vgg_dir):
    from src.train import train

    m = train(
        _cfg(
            tin_root,
            vgg_dir,
            "trainer.max_steps=2",
            "model.optim.order=d_first",
            "model.optim.n_critic=2",
            "model.optim.d_fake=reuse",
            "model.loss.lambda_kl=0",
            "trainer.limit_val_batches=0",
            run_name="order",
        )
    )
    assert np.isfinite(m["Loss/D"]) and np.isfinite(m["Loss/G"]) and "Loss/kl" not in m


def test_teacher_columns_for_the_200_tinyimagenet_classes(tmp_path, vgg_dir):
    """The 200 wnids of a TinyImageNet wnids.txt map to 200 distinct teacher columns (jeniasivets/chromagan)."""
    from hydra.utils import instantiate

    root = make_tiny_imagenet(tmp_path, per_class=1)
    wnids = (ROOT / "tests" / "data" / "tinyimagenet_wnids.txt").read_text().split()
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for w in wnids:
        (root / "train" / w / "images").mkdir(parents=True, exist_ok=True)
    cfg = _cfg(root, vgg_dir)
    cfg.model.num_classes = 200
    dm, model = instantiate(cfg.data), instantiate(cfg.model)
    model.prepare_fit(dm)
    cols = model.class_columns
    assert cols.shape == (200,) and len(set(cols.tolist())) == 200
    assert cols[wnids.index("n01443537")] == 1 and cols[wnids.index("n09428293")] == 978
    assert cols[wnids.index("n02113799")] == 267 and cols[wnids.index("n02099601")] == 207
    assert model._teacher is not None and model._teacher(torch.rand(2, 1, 32, 32)).shape == (2, 200)


def test_bad_configs_give_one_clear_error(log_dir, tin_root, tmp_path, vgg_dir):
    from src.train import train
    from src.utils.validation import ConfigError

    empty = tmp_path / "no-weights"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"vgg16-397923af.pth not found.*trunk_pretrained=false"):
        train(_cfg(tin_root, empty, "model.width=1.0", "model.trunk_pretrained=true", "trainer.max_steps=1"))
    with pytest.raises(ConfigError, match=r"vgg16-397923af.pth not found.*lambda_kl=0"):
        train(_cfg(tin_root, empty, "trainer.max_steps=1"))
    assert not (log_dir / "chromagan_tinyimagenet" / "test").exists()  # nothing written
    with pytest.raises(ConfigError, match="use colorspace=lab"):
        train(_cfg(tin_root, vgg_dir, "colorspace=rgb", "trainer.max_steps=1"))
    with pytest.raises(ConfigError, match="model.width=0.0625: the ImageNet VGG-16 trunk needs width 1.0"):
        train(_cfg(tin_root, vgg_dir, "model.trunk_pretrained=true", "trainer.max_steps=1"))
    # a StyleGAN preset named with ChromaGAN is refused naming its keys; without one none applies
    with pytest.raises(ConfigError, match="model.map_depth.*drop preset="):
        train(compose_cfg(["model=chromagan", "colorspace=lab", "data.resolution=32", "preset=paper256"]))
    plain = compose_cfg(["model=chromagan", "colorspace=lab", "data.resolution=32"])
    assert "map_depth" not in plain.model and "channel_base" not in plain.model
    with pytest.raises(MissingWeightsError):  # the library raises the same message
        from src.modules.chromagan.vgg import Teacher

        Teacher(str(empty))


def test_pretrained_trunk_loads_imagenet_file_on_fresh_runs_only(vgg_dir):
    from src.modules.chromagan.module import ChromaGAN

    state = torch.load(vgg_dir / WEIGHTS["vgg16"].filename, weights_only=True)
    m = ChromaGAN(
        resolution=32,
        num_classes=1000,
        class_fc=(8,),
        global_fc=(8,),
        weights_dir=str(vgg_dir),
        loss={"lambda_kl": 0.0},
    )
    m.prepare_fit(resuming=True)
    assert not torch.equal(m.G.trunk[0].weight, state["features.0.weight"]) and not bool(m.trunk_initialized)
    m.prepare_fit()
    assert torch.equal(m.G.trunk[21].weight, state["features.21.weight"]) and bool(m.trunk_initialized)
    m.G.trunk[0].weight.data.zero_()
    m.prepare_fit()  # already initialised (e.g. restored from a checkpoint): not reloaded
    assert m.G.trunk[0].weight.abs().sum() == 0


# ------------------------------------------------------------------------------------------------
# scripts/colorize.py


@pytest.fixture(scope="module")
def chroma_ckpt(tmp_path_factory, vgg_dir) -> Path:
    from src.train import train

    base = tmp_path_factory.mktemp("cli")
    root = make_tiny_imagenet(base, per_class=2)
    with logs_in(base / "logs"):
        train(_cfg(root, vgg_dir, "trainer.max_steps=1", "model.loss.lambda_kl=0", "trainer.limit_val_batches=0"))
    return next((base / "logs").rglob("last.ckpt"))


def test_colorize_cli_any_size_mode_and_bad_files(tmp_path, chroma_ckpt):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(src / "odd.jpg")
    Image.fromarray(rng.integers(0, 255, (11, 9), dtype=np.uint8)).save(src / "sub" / "small_gray.png")
    rgba = rng.integers(0, 255, (20, 24, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
    (src / "notes.txt").write_text("not an image")
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "scripts/colorize.py", f"ckpt={chroma_ckpt}", f"input={src}", f"out={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "notes.txt: skipped, not an image file" in result.stderr
    assert "broken.png: skipped, not a readable image" in result.stderr
    assert Image.open(out / "odd.png").size == (53, 37) and Image.open(out / "odd.png").mode == "RGB"
    assert Image.open(out / "sub" / "small_gray.png").size == (9, 11)
    colored = Image.open(out / "alpha.png")
    assert colored.mode == "RGBA" and np.array_equal(np.array(colored)[:, :, 3], rgba[:, :, 3])
    # the output keeps the input's lightness: only the chroma is predicted
    lab_in = LAB.encode(torch.from_numpy(np.array(Image.open(src / "odd.jpg"))).permute(2, 0, 1)[None].float() / 255)
    lab_out = LAB.encode(torch.from_numpy(np.array(Image.open(out / "odd.png"))).permute(2, 0, 1)[None].float() / 255)
    assert (lab_in[:, 0] - lab_out[:, 0]).abs().mean() < 0.02

    from src.tools.colorize import main

    with pytest.warns(UserWarning, match="exists: kept"):
        assert main([f"ckpt={chroma_ckpt}", f"input={src / 'odd.jpg'}", f"out={out}"]) == []


def test_colorize_cli_bad_input(tmp_path, chroma_ckpt):
    from src.tools.colorize import main

    with pytest.raises(SystemExit, match="input=FILE_OR_DIR is required"):
        main([f"ckpt={chroma_ckpt}"])
    with pytest.raises(SystemExit, match="no such checkpoint file"):
        main([f"ckpt={tmp_path / 'none.ckpt'}", f"input={tmp_path}"])
    with pytest.raises(SystemExit, match="no such file or folder"):
        main([f"ckpt={chroma_ckpt}", f"input={tmp_path / 'missing'}"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no image files found"):
        main([f"ckpt={chroma_ckpt}", f"input={tmp_path / 'empty'}"])


def test_colorize_matches_the_module_at_training_size(chroma_ckpt):
    """At the training size, the CLI's path equals G's own prediction joined with the input's L."""
    from src.checkpoints.load import load_module

    model = load_module(chroma_ckpt)
    rgb = torch.rand(2, 3, 32, 32)
    lab = LAB.encode(rgb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = model.colorize(lab)
    l_in, _ = split_lab(lab, model.ab_norm)
    ab = model.G.eval()(l_in)[0]
    assert torch.allclose(out, join_lab(l_in, ab, model.ab_norm), atol=1e-6)
    assert torch.allclose(out[:, :1], lab[:, :1], atol=1e-6)


# ------------------------------------------------------------------------------------------------
# learning: beats the gray baseline where colour follows from the gray image


def _scene(rng: np.random.Generator, size: int = 32) -> Image.Image:
    """Sky over grass with a sun: hue is predictable from brightness and position, as in photos."""
    y = np.arange(size)[:, None] / (size - 1)
    horizon, light = rng.uniform(0.3, 0.7), rng.uniform(0.7, 1.0)
    sky = np.stack([0.35 + 0.3 * y, 0.55 + 0.3 * y, np.ones_like(y)], -1) * light
    grass = np.stack([0.15 + 0 * y, 0.45 - 0.2 * y, 0.1 + 0 * y], -1) * light
    img = np.where((y < horizon)[..., None], sky, grass) * np.ones((size, size, 1))
    cy, cx, r = rng.uniform(0.05, horizon - 0.1) * size, rng.uniform(0.1, 0.9) * size, rng.uniform(2, 4)
    yy, xx = np.mgrid[:size, :size]
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = (1.0, 0.9, 0.3)
    img += rng.normal(0, 0.02, img.shape)
    return Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8))


@pytest.mark.slow
def test_psnr_rises_above_the_gray_baseline(log_dir, tmp_path, vgg_dir):
    """experiment=chromagan_imagenet on folders (train + val_root): after 200 steps val/psnr beats gray."""
    from src.train import train

    rng = np.random.default_rng(0)
    for split, n in (("train", 160), ("val", 16)):
        (tmp_path / split).mkdir()
        for i in range(n):
            _scene(rng).save(tmp_path / split / f"{i:03d}.png")
    cfg = compose_cfg(
        [
            "experiment=chromagan_imagenet",
            f"data.root={tmp_path / 'train'}",
            f"data.val_root={tmp_path / 'val'}",
            f"paths.weights_dir={vgg_dir}",
            "model.trunk_pretrained=false",
            "model.loss.lambda_kl=0",
            "model.optim.g_lr=2e-4",
            "model.optim.d_lr=2e-4",
            "model.width=0.125",
            "model.critic.width=0.125",
            "model.global_fc=[64,32]",
            "model.class_fc=[64]",
            "data.resolution=32",
            "data.batch_size=8",
            "data.num_workers=0",
            "trainer.max_steps=200",
            "trainer.val_check_interval=200",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "logger=none",
            "run_name=learn",
        ]
    )
    m = train(cfg)
    assert m["val/psnr_gain"] > 1.0, m
    assert m["val/psnr"] == pytest.approx(m["val/psnr_gray"] + m["val/psnr_gain"], abs=1e-4)
