"""FD-DINOv2 (Stein et al. 2023): gamut's DINOv2 ViT-L/14 (src/metrics/dinov2.py) against the
upstream file format, DINOv2's positional-embedding interpolation and dgm-eval's preprocessing; the
``fd_dinov2*`` names through ``src.eval``, the metrics callback and a sweep's ``optimized_metric``.

Parity with facebookresearch/dinov2's own ``dinov2_vitl14`` and with dgm-eval's pipeline needs their
code, which is not here: docs/parity.md records that comparison. These tests write random weights
in the upstream key format (the key list below is facebookresearch/dinov2's, not read from gamut).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from torch import nn

import src.metrics.dinov2 as dinov2
import src.metrics.networks as networks
from src.eval import evaluate
from src.metrics.formulas import fid_from_features
from src.metrics.protocols import higher_is_better, parse_metrics, protocol
from src.metrics.registry import MetricContext, metric_kind
from src.metrics.suite import check_weights
from src.pretrained.weights import WEIGHTS, MissingWeightsError
from src.sweeps.objective import check_optimized_metric, metric_keys
from tests.conftest import TINY, compose_cfg, tiny_run

WEIGHTS_FILE = "dinov2_vitl14_pretrain.pth"


def upstream_shapes(depth: int = 24, dim: int = 1024) -> dict[str, tuple[int, ...]]:
    """The tensors of ``dinov2_vitl14_pretrain.pth`` (facebookresearch/dinov2 ``DinoVisionTransformer``
    as ``dinov2_vitl14`` builds it: no block chunks, no register tokens), name -> shape."""
    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, dim),
        "pos_embed": (1, 37 * 37 + 1, dim),
        "mask_token": (1, dim),
        "patch_embed.proj.weight": (dim, 3, 14, 14),
        "patch_embed.proj.bias": (dim,),
    }
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update(
            {
                b + "norm1.weight": (dim,),
                b + "norm1.bias": (dim,),
                b + "attn.qkv.weight": (3 * dim, dim),
                b + "attn.qkv.bias": (3 * dim,),
                b + "attn.proj.weight": (dim, dim),
                b + "attn.proj.bias": (dim,),
                b + "ls1.gamma": (dim,),
                b + "norm2.weight": (dim,),
                b + "norm2.bias": (dim,),
                b + "mlp.fc1.weight": (4 * dim, dim),
                b + "mlp.fc1.bias": (4 * dim,),
                b + "mlp.fc2.weight": (dim, 4 * dim),
                b + "mlp.fc2.bias": (dim,),
                b + "ls2.gamma": (dim,),
            }
        )
    shapes.update({"norm.weight": (dim,), "norm.bias": (dim,)})
    return shapes


def random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of the upstream names, shapes and dtype (norm weights and LayerScale near 1).

    The large matrices are views at different offsets of one random pool of 8M numbers, so the file
    (torch.save writes a shared storage once) is 32 MB instead of ViT-L's 1.2 GB, and writes and
    loads in a CPU test's time; the loader sees ordinary tensors of the right shapes.
    """
    g = torch.Generator().manual_seed(seed)
    pool = 0.02 * torch.randn(1 << 23, generator=g)
    state = {}
    for i, (name, shape) in enumerate(upstream_shapes().items()):
        numel = math.prod(shape)
        if numel > 1 << 16:
            offset = (i * 7919 * 64) % (pool.numel() - numel)
            state[name] = pool[offset : offset + numel].view(shape)
            continue
        t = torch.randn(shape, generator=g)
        if name.endswith(("norm1.weight", "norm2.weight", "gamma")) or name == "norm.weight":
            t = 1 + 0.1 * t
        elif name.endswith("bias"):
            t = 0.02 * t
        state[name] = t
    return state


@pytest.fixture(scope="module")
def dinov2_dir(tmp_path_factory) -> Path:
    """A weights folder holding random ViT-L/14 weights under the upstream file name."""
    d = tmp_path_factory.mktemp("dinov2")
    torch.save(random_state(), d / WEIGHTS_FILE)
    return d


@pytest.fixture(scope="module")
def short_dinov2(dinov2_dir) -> dinov2.DINOv2Features:
    """The loaded network with its first two blocks only: the whole pipeline (resize, normalise, patch
    embedding, interpolated positions, blocks, final norm) at a CPU test's cost."""
    feats = dinov2.DINOv2Features(dinov2_dir)
    feats.net.blocks = nn.ModuleList(list(feats.net.blocks)[:2])
    return feats


# ------------------------------------------------------------------------------------------------
# the network and its file


def test_the_parameters_carry_the_upstream_names_and_shapes():
    with torch.device("meta"):
        net = dinov2.DINOv2ViT()
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == upstream_shapes()
    assert sum(v.numel() for v in net.state_dict().values()) == 304_368_640  # ViT-L/14, as the hub model


def test_the_pretrained_file_loads_strictly(dinov2_dir, monkeypatch):
    feats = dinov2.DINOv2Features(dinov2_dir)
    state = torch.load(dinov2_dir / WEIGHTS_FILE, weights_only=True)
    loaded = feats.net.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    assert feats.weights_file == dinov2_dir / WEIGHTS_FILE and not feats.training
    assert not any(p.requires_grad for p in feats.parameters())

    extra = {**state, "register_tokens": torch.zeros(1, 4, 1024)}  # the dinov2_vitl14_reg4 file
    missing = {k: v for k, v in state.items() if k != "blocks.23.ls2.gamma"}
    resized = {**state, "pos_embed": torch.zeros(1, 257, 1024)}  # a 224 px table
    for bad, why in ((extra, "register_tokens"), (missing, "blocks.23.ls2.gamma"), (resized, "pos_embed")):
        monkeypatch.setattr(dinov2, "load_weights", lambda name, d, bad=bad: bad)
        with pytest.raises(MissingWeightsError, match=f"is not DINOv2 ViT-L/14's state dict: .*{why}"):
            dinov2.DINOv2Features(dinov2_dir)


def test_features_of_uint8_images_are_1024_wide(short_dinov2):
    images = torch.randint(0, 256, (3, 3, 16, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = short_dinov2(images)
    assert out.shape == (3, 1024) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # the image matters
    # the class token after the final norm: zero mean, unit variance before the norm's affine map
    net = short_dinov2.net
    normed = (out - net.norm.bias) / net.norm.weight
    assert torch.allclose(normed.mean(dim=1), torch.zeros(3), atol=1e-4)
    assert torch.allclose(normed.var(dim=1, unbiased=False), torch.ones(3), atol=1e-3)
    with pytest.raises(ValueError, match="uint8"):
        short_dinov2(images.float())


# ------------------------------------------------------------------------------------------------
# positional embeddings (dinov2/models/vision_transformer.py, interpolate_pos_encoding)


def _torch_bicubic_matrix(in_size: int, out_size: int, scale_factor: float) -> np.ndarray:
    """PyTorch's bicubic interpolation of one axis written out (Keys' kernel, A = -0.75,
    align_corners=False, border samples repeated), sampled at ``(i + 0.5) / scale_factor - 0.5``."""
    a = -0.75

    def kernel(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        if x < 2:
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return 0.0

    m = np.zeros((out_size, in_size))
    for i in range(out_size):
        src = (i + 0.5) / scale_factor - 0.5
        base = math.floor(src)
        for j in range(base - 1, base + 3):
            m[i, min(max(j, 0), in_size - 1)] += kernel(src - j)
    return m


def test_positions_are_the_table_at_518_px_and_its_offset_bicubic_resize_at_224():
    torch.manual_seed(0)
    net = dinov2.DINOv2ViT(dim=8, depth=1, heads=2)  # the 37 x 37 grid of ViT-L/14, narrow
    nn.init.normal_(net.pos_embed)
    assert torch.equal(net.position_embedding(518, 518), net.pos_embed)  # 37 x 37 patches: as stored

    pos = net.position_embedding(224, 224)  # 16 x 16 patches
    assert pos.shape == (1, 1 + 16 * 16, 8) and torch.equal(pos[:, 0], net.pos_embed[:, 0])  # the class token's
    table = net.pos_embed[0, 1:].detach().double().numpy().reshape(37, 37, 8)
    m = _torch_bicubic_matrix(37, 16, (16 + 0.1) / 37)  # DINOv2's interpolate_offset 0.1
    expected = np.einsum("ai,bj,ijc->abc", m, m, table).reshape(1, 256, 8)
    assert np.abs(pos[:, 1:].detach().double().numpy() - expected).max() < 1e-5
    plain = _torch_bicubic_matrix(37, 16, 16 / 37)  # the offset moves the samples: not a plain resize to 16
    assert np.abs(np.einsum("ai,bj,ijc->abc", plain, plain, table).reshape(1, 256, 8) - expected).max() > 1e-2


# ------------------------------------------------------------------------------------------------
# preprocessing (dgm-eval dgm_eval/models/dinov2.py: Resize((224, 224), BICUBIC) on the PIL image)


@pytest.mark.parametrize("size", [(16, 16), (250, 300), (224, 224), (37, 500), (2, 3)])
def test_the_resize_is_pillows_bicubic_exactly(size):
    g = torch.Generator().manual_seed(sum(size))
    images = torch.randint(0, 256, (2, 3, *size), dtype=torch.uint8, generator=g)
    ours = dinov2.pil_bicubic_resize(images, (224, 224))
    for image, mine in zip(images, ours, strict=True):
        pil = Image.fromarray(image.permute(1, 2, 0).numpy()).resize((224, 224), Image.Resampling.BICUBIC)
        assert torch.equal(mine, torch.from_numpy(np.array(pil)).permute(2, 0, 1))


def test_preprocessing_of_a_known_image():
    gray = torch.full((1, 3, 5, 7), 128, dtype=torch.uint8)
    gray[0, 1] = 0  # R 128, G 0, B 128
    x = dinov2.preprocess(gray)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    expected = (torch.tensor([128, 0, 128]) / 255 - mean) / std
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert torch.allclose(x, expected.view(1, 3, 1, 1).expand(1, 3, 224, 224), atol=1e-6)
    two = torch.tensor([[[[0, 255], [255, 0]]]], dtype=torch.uint8).expand(1, 3, 2, 2)  # upsampled: overshoot clipped
    up = torch.from_numpy(np.array(Image.fromarray(two[0].permute(1, 2, 0).numpy()).resize((224, 224), 3)))
    assert torch.allclose(
        dinov2.preprocess(two), ((up.permute(2, 0, 1).float() / 255 - mean[:, None, None]) / std[:, None, None])[None]
    )


# ------------------------------------------------------------------------------------------------
# the metric


def test_the_names_follow_fids_scheme():
    full = protocol("fd_dinov2_50k_full")
    assert (full.kind, full.num_gen, full.max_real, full.mirror_reals) == ("fd_dinov2", 50000, None, False)
    assert (protocol("fd_dinov2_10k_full").num_gen, protocol("fd_dinov2_500").max_real) == (10000, 500)
    custom = protocol("fd_dinov2", {"num_gen": 7, "num_real": 5})
    assert (custom.num_gen, custom.max_real, custom.configurable) == (7, 5, True)
    assert protocol("fd_dinov2_1_full") is None and protocol("fd_dinov250k") is None
    assert full.network == "dinov2" and networks.DINOV2.width == 1024
    assert higher_is_better("fd_dinov2_50k_full") is False  # a sweep's direction=auto minimises it
    assert WEIGHTS["dinov2_vitl14"].filename == WEIGHTS_FILE


def test_fd_of_identical_features_is_zero_and_of_shifted_ones_the_squared_shift():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(2000, 64, generator=g)  # any width: 64 keeps scipy's sqrtm quick
    p = protocol("fd_dinov2_2k_full")
    fd = metric_kind("fd_dinov2").compute

    def value(fake: torch.Tensor) -> float:
        return fd(MetricContext(p, suite=None, module=None, fake=fake, real=real)).values["fd_dinov2_2k_full"]  # type: ignore[arg-type]

    assert abs(value(real.clone())) < 1e-6
    assert value(real + 0.5) == pytest.approx(64 * 0.25, rel=1e-6)  # same covariance: |mean shift|^2
    assert value(real * 2) == pytest.approx(fid_from_features(real, real * 2))


def test_a_missing_file_is_named_before_any_work(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"dinov2_vitl14_pretrain\.pth.*dl\.fbaipublicfiles\.com/dinov2"):
        check_weights(["fd_dinov2_10k_full"], tmp_path)


def test_the_callback_and_a_sweep_accept_the_names(tmp_path, log_dir):
    cfg = compose_cfg(
        [
            *TINY,
            "hparams_search=stylegan2_optuna",
            "callbacks.metrics.metrics=[fd_dinov2_10k_full]",
            "optimized_metric=fd_dinov2_10k_full",
            f"paths.weights_dir={tmp_path}",
        ]
    )
    assert "fd_dinov2_10k_full" in metric_keys(cfg)
    check_optimized_metric(cfg)  # no error: the run computes it
    callback = instantiate(cfg.callbacks.metrics)
    assert callback.suite.result_keys() == ["fd_dinov2_10k_full"] and callback.active
    assert [p.network for p in parse_metrics(callback.suite.metrics)] == ["dinov2"]
    with pytest.raises(MissingWeightsError, match="dinov2_vitl14_pretrain.pth"):
        callback.setup(None, None, "fit")


# ------------------------------------------------------------------------------------------------
# src.eval end to end


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A 2-iteration 16 px StyleGAN2 run; returns its run folder."""
    return tiny_run(tmp_path_factory.mktemp("logs"), "fd")


def _eval(run: Path, weights_dir: Path, out: Path, *overrides: str) -> dict[str, float]:
    cfg = compose_cfg(
        [
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            f"paths.weights_dir={weights_dir}",
            f"paths.log_dir={run.parent.parent}",
            f"paths.cache_dir={out.parent / 'cache'}",  # this test's own: the two-block network's features stay there
            "+data.dataset.size=3",
            "num_gen=3",
            "num_real=4",
            "batch_size=4",
            f"output={out}",
            *overrides,
        ],
        config_name="eval.yaml",
    )
    return evaluate(cfg)


def test_eval_computes_fd_dinov2(run, dinov2_dir, short_dinov2, tmp_path, monkeypatch):
    """The whole path with the two-block network: the name, both passes, the cache file, the record."""
    monkeypatch.setattr(networks, "load_dinov2", lambda weights_dir: short_dinov2)
    out = tmp_path / "m.json"
    flat = _eval(run, dinov2_dir, out, "metrics=[fd_dinov2_2_full]")
    assert set(flat) == {"fd_dinov2_2_full"} and math.isfinite(flat["fd_dinov2_2_full"])
    record = json.loads(out.read_text())["metrics"]["fd_dinov2_2_full"]
    protocol = record["protocol"]
    assert (protocol["kind"], protocol["num_gen"], protocol["num_real"], protocol["mirror"]) == (
        "fd_dinov2",
        2,
        3,
        False,
    )
    assert protocol["network"] == "DINOv2 ViT-L/14 CLS" and protocol["real_cache"]["hit"] is False
    assert Path(protocol["real_cache"]["file"]).name.startswith("dinov2-")
    assert record["values"] == flat


@pytest.mark.slow
def test_eval_computes_fd_dinov2_with_the_whole_vit_l(run, dinov2_dir, tmp_path):
    """``python -m src.eval 'metrics=[fd_dinov2_2_full]'`` with all 24 blocks of ViT-L (seconds an image on a CPU)."""
    out = tmp_path / "m.json"
    flat = _eval(run, dinov2_dir, out, "metrics=[fd_dinov2_2_full]")
    assert set(flat) == {"fd_dinov2_2_full"} and math.isfinite(flat["fd_dinov2_2_full"])
    record = json.loads(out.read_text())["metrics"]["fd_dinov2_2_full"]
    assert (record["protocol"]["num_gen"], record["protocol"]["num_real"]) == (2, 3)
