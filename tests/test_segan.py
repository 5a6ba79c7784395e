"""SEGAN (curefate/SEGan_Pytorch): subspace math, index map, edits, orthogonality, training and exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.checkpoints.export import export_generator, load_generator
from src.checkpoints.load import load_module
from src.modules.segan.editing import Edit
from src.modules.segan.generator import SEGANGenerator, SEGANSynthesis
from src.modules.segan.losses import orthogonality_penalty
from src.modules.segan.module import SEGAN
from src.modules.segan.subspace import ColumnSumSubspace
from src.modules.stylegan2.module import StyleGAN2
from src.tools import generate
from src.train import train
from src.utils.validation import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY_G = dict(z_dim=8, w_dim=8, map_depth=1, channel_base=64, channel_max=8, resolution=(16, 16))
MODES = [(0, "faithful"), (1, "faithful"), (2, "faithful"), (2, "eigen"), (3, "faithful")]


def tiny_generator(mode: int, variant: str = "faithful", **kw) -> SEGANGenerator:
    torch.manual_seed(0)
    return SEGANGenerator(**{**TINY_G, **kw}, mode=mode, variant=variant)


# ----------------------------------------------------------------------------------------------
# Mode 2 faithful == their column-sum formula (their model_SEG.py).


def test_faithful_mode2_equals_bruteforce_column_sum():
    torch.manual_seed(0)
    c, h, w, q, b = 3, 4, 4, 5, 6
    u = torch.randn(c, h, w, q)
    lam, mu, ws, alpha = torch.randn(q), torch.randn(q), torch.randn(b, q), 0.7
    # their forward: U * (alpha L w) along the last axis, summed over (C, h, w), plus mu
    brute = (u.unsqueeze(0) * (alpha * lam * ws).reshape(b, 1, 1, 1, q)).sum(dim=(1, 2, 3)) + mu
    sub = ColumnSumSubspace(c, (h, w), q)
    with torch.no_grad():
        sub.p.copy_(u.sum(dim=(0, 1, 2)) / sub.n)
        sub.L.copy_(lam)
        sub.mu.copy_(mu)
    assert sub.n == c * h * w
    torch.testing.assert_close(sub(alpha * ws), brute, rtol=1e-5, atol=1e-5)


def test_faithful_reparametrisation_follows_adam_on_the_full_tensor():
    """s = n * p under Adam moves like the column sums of the full U (up to Adam's eps)."""
    torch.manual_seed(0)
    c, h, w, q = 2, 3, 3, 4
    u = torch.nn.Parameter(torch.randn(c, h, w, q) * 0.1)
    sub = ColumnSumSubspace(c, (h, w), q)
    with torch.no_grad():
        sub.p.copy_(u.sum(dim=(0, 1, 2)) / sub.n)
    target = torch.randn(8, q)
    x = torch.randn(8, q)
    opt_u, opt_p = torch.optim.Adam([u], lr=1e-3, eps=1e-12), torch.optim.Adam([sub.p], lr=1e-3, eps=1e-12)
    for _ in range(5):
        for opt, out in ((opt_u, x * u.sum(dim=(0, 1, 2))), (opt_p, x * sub.column_sums())):
            opt.zero_grad()
            (out - target).square().mean().backward()
            opt.step()
    torch.testing.assert_close(sub.column_sums(), u.sum(dim=(0, 1, 2)), rtol=1e-4, atol=1e-5)


def test_faithful_init_matches_their_column_sum_distribution():
    torch.manual_seed(0)
    sub = ColumnSumSubspace(128, (4, 4), 64)
    s = torch.stack([ColumnSumSubspace(128, (4, 4), 64).column_sums() for _ in range(20)])
    assert s.std().item() == pytest.approx((128 / 64) ** 0.5, rel=0.1)  # ~1.41 for convs
    assert sub.p.abs().max() < 1  # stored divided by n = C*h*w


# ----------------------------------------------------------------------------------------------
# Index map: K = 10 slots and 14 subspaces at 64 px.


def test_slot_and_subspace_index_map_at_64px():
    syn = SEGANSynthesis(w_dim=8, resolution=(64, 64), channel_base=256, channel_max=4, mode=3)
    assert syn.num_ws == 10 and syn.num_layers == 14 and len(syn.spaces) == 14
    assert syn.layout == [[0, 1], [2, 3, 4], [5, 6, 7], [8, 9, 10], [11, 12, 13]]
    assert [l["slot"] for l in syn.layers] == [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7, 8, 9]
    assert [l["kind"] for l in syn.layers[:5]] == ["conv", "torgb", "conv_up", "conv", "torgb"]
    # toRGB of block b and the first conv of block b+1 share slot 2b+1, but have their own subspaces
    for b in range(4):
        assert syn.layers[syn.layout[b][-1]]["slot"] == syn.layers[syn.layout[b + 1][0]]["slot"] == 2 * b + 1
    g = SEGANGenerator(z_dim=8, w_dim=8, resolution=(64, 64), channel_base=256, channel_max=4, mode=1, map_depth=1)
    table = g.subspaces()
    assert len(table) == 14
    row = table[12]  # L4 N1: the 64x64 conv
    assert (row["layer"], row["subspace"], row["kind"], row["resolution"], row["slot"], row["q"]) == (
        4,
        1,
        "conv",
        "64x64",
        8,
        8,
    )
    assert row["abs_L"] == [1.0] * 8 and sorted(row["rank"]) == list(range(8))
    assert g.synthesis.spaces[12].U.shape == (4 * 64 * 64, 8)  # a [C*h*w, q] matrix, applied as a matmul


# ----------------------------------------------------------------------------------------------
# Edits.


@pytest.mark.parametrize("mode,variant", MODES)
def test_edit_changes_only_that_layer(mode, variant):
    g = tiny_generator(mode, variant).eval()
    z = torch.randn(3, 8)
    # (1, 2) is toRGB of block 1: it shares slot 3 with conv_up of block 2, which must stay untouched
    edit = Edit(layer=1, subspace=2, dim=3, op="add", value=2.5)
    img0, st0 = g(z, noise_mode="const", return_styles=True)
    img1, st1 = g(z, noise_mode="const", edits=[edit], return_styles=True)
    lid = g.synthesis.layout[1][2]
    changed_c = (st0["coords"] != st1["coords"]).any(dim=0)  # [S, q]
    assert changed_c.nonzero().tolist() == [[lid, 3]]
    changed_w = (st0["layer_ws"] != st1["layer_ws"]).any(dim=2).any(dim=0)  # [S]
    if mode == 1:  # the edit moves phi only; modulation keeps the unedited w (their mode 1)
        assert not changed_w.any()
    else:
        assert changed_w.nonzero().flatten().tolist() == [lid]
    assert not torch.equal(img0, img1)
    # no side effects: the same call without edits gives the first image again
    assert torch.equal(g(z, noise_mode="const"), img0)


def test_edit_ops_units_and_alpha():
    g = tiny_generator(3)
    z = torch.randn(4, 8)
    stats = g.coord_stats(n=256, batch=128)
    lid = g.synthesis.layout[2][1]
    _, st = g(z, noise_mode="const", return_styles=True)
    _, st_set = g(z, noise_mode="const", edits=[Edit(2, 1, 5, "set", 2.0, "sigma")], stats=stats, return_styles=True)
    torch.testing.assert_close(st_set["coords"][:, lid, 5], (stats[0] + 2.0 * stats[1])[lid, 5].expand(4))
    _, st_alpha = g(z, noise_mode="const", edits=[{"L": 2, "N": 1, "op": "scale", "value": 0.5}], return_styles=True)
    torch.testing.assert_close(st_alpha["coords"][:, lid], st["coords"][:, lid] * 0.5)
    per_sample = torch.tensor([0.0, 1.0, 2.0, 3.0])
    _, st_b = g(z, noise_mode="const", edits=[Edit(2, 1, 0, "set", per_sample)], return_styles=True)
    torch.testing.assert_close(st_b["coords"][:, lid, 0], per_sample)


@pytest.mark.parametrize(
    "edit,match",
    [
        (Edit(layer=3, subspace=0, dim=0), r"layer=3 does not exist: valid layers are 0..2"),
        (Edit(layer=0, subspace=2, dim=0), r"subspace=2 does not exist in layer 0: valid subspaces are 0..1"),
        (Edit(layer=1, subspace=2, dim=8), r"dim=8 does not exist: valid dims are 0..7"),
        ({"layer": 1, "subspace": 0, "op": "mul"}, r"op='mul'"),
        ({"layer": 1, "subspace": 0, "dim": 1, "units": "sigma", "op": "add", "value": 1}, r"stats="),
    ],
)
def test_bad_edit_names_value_and_range(edit, match):
    g = tiny_generator(2)
    with pytest.raises(ValueError, match=match):
        g(torch.randn(2, 8), edits=[edit])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(mode=4), r"model.mode=4: valid modes are 0..3"),
        (dict(mode=-1), r"model.mode=-1"),
        (dict(mode=1, subspace=dict(variant="eigen")), r"variant='eigen' does not apply to model.mode=1"),
        (dict(mode=2, subspace=dict(variant="diag")), r"variant='diag': allowed values are faithful, eigen"),
        (dict(mode=2, subspace=dict(coords="sampled")), r"coords='sampled' needs model.mode=2"),
        (dict(mode=3, loss=dict(orth_reg=dict(weight=1.0))), r"orth_reg.weight=1.0 does not apply to model.mode=3"),
        (dict(mode=2, loss=dict(orth_reg=dict(weight=1.0))), r"does not apply to model.mode=2 \(variant 'faithful'\)"),
    ],
)
def test_bad_mode_or_variant_is_one_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SEGAN(**{k: v for k, v in TINY_G.items()}, mbstd_group=2, **kwargs)


def test_eigen_sampled_coordinates():
    """coords=sampled: w'_l = w + U_l (L_l * z_l) + mu_l with z_l given or drawn (variant eigen)."""
    torch.manual_seed(0)
    g = SEGANGenerator(**TINY_G, mode=2, variant="eigen", coords="sampled", q=3, L_init="eigengan")
    syn = g.synthesis
    z = torch.randn(2, 8)
    coords = torch.randn(2, syn.num_layers, 3)
    img, st = g(z, noise_mode="const", coords=coords, return_styles=True)
    assert torch.equal(st["coords"], coords)
    slot_ws = st["ws"][:, syn.slot_index]
    for i, space in enumerate(syn.spaces):
        expected = slot_ws[:, i] + (coords[:, i] * space.L) @ space.U.t() + space.mu
        torch.testing.assert_close(st["layer_ws"][:, i], expected)
    assert g.subspaces()[0]["abs_L"] == [9.0, 6.0, 3.0] and g.subspaces()[0]["rank"] == [0, 1, 2]
    assert torch.equal(g(z, noise_mode="const", coords=coords), img)
    mean, std = g.coord_stats(n=4000, batch=1000)
    assert mean.abs().max() < 0.1 and (std - 1).abs().max() < 0.1
    with pytest.raises(ValueError, match=r"coords must be \[2, 8, 3\]"):
        g(z, coords=torch.randn(2, 8, 4))


# ----------------------------------------------------------------------------------------------
# Orthogonality regulariser (He et al. 2021, EigenGAN).


@pytest.mark.parametrize("form", ["half_fro_sum", "mean"])
def test_orthogonality_penalty_zero_iff_orthonormal(form):
    torch.manual_seed(0)
    q1, _ = torch.linalg.qr(torch.randn(20, 6))
    q2, _ = torch.linalg.qr(torch.randn(9, 9))
    assert orthogonality_penalty([q1, q2], form).item() == pytest.approx(0.0, abs=1e-10)
    assert orthogonality_penalty([q1, 1.1 * q2], form).item() > 1e-3
    u = torch.randn(20, 6)
    expected = (
        0.5 * (u.t() @ u - torch.eye(6)).square().sum()
        if form == "half_fro_sum"
        else (u.t() @ u - torch.eye(6)).square().mean()
    )
    torch.testing.assert_close(orthogonality_penalty([u], form), expected)


def test_orthogonality_targets_and_the_4x4_torgb_caveat():
    # EigenGAN-style init: orthonormal columns, zero penalty
    assert orthogonality_penalty(tiny_generator(2, "eigen").synthesis.orth_bases()).item() < 1e-10
    # mode 1 with w_dim 64: toRGB at 4x4 is 3*16 = 48 < 64 rows and is left out
    g = SEGANGenerator(
        z_dim=64, w_dim=64, map_depth=1, channel_base=64, channel_max=8, resolution=(8, 8), mode=1, U_init="orthonormal"
    )
    bases = g.synthesis.orth_bases()
    assert len(bases) == g.synthesis.num_layers - 1 and all(u.shape[0] >= 64 for u in bases)
    assert orthogonality_penalty(bases).item() < 1e-8
    # their row-wise init is not orthonormal over the basis columns
    g_segan = SEGANGenerator(
        z_dim=64, w_dim=64, map_depth=1, channel_base=64, channel_max=8, resolution=(8, 8), mode=1, U_init="segan"
    )
    assert orthogonality_penalty(g_segan.synthesis.orth_bases()).item() > 1.0
    # faithful mode 2 and mode 3 have no basis
    assert tiny_generator(2).synthesis.orth_bases() == [] and tiny_generator(3).synthesis.orth_bases() == []


def test_hard_qr_basis_is_orthonormal():
    g = SEGANGenerator(**TINY_G, mode=2, variant="eigen", hard="qr")
    with torch.no_grad():
        for s in g.synthesis.spaces:
            s.U.mul_(3.0).add_(0.1)
    assert orthogonality_penalty([s.basis() for s in g.synthesis.spaces]).item() < 1e-8


# ----------------------------------------------------------------------------------------------
# Mode 0 == StyleGAN2.


def test_mode0_equals_stylegan2_given_the_same_weights():
    args = dict(**TINY_G, mbstd_group=2)
    torch.manual_seed(1)
    ref = StyleGAN2(**args)
    torch.manual_seed(1)
    seg = SEGAN(**args, mode=0)
    a, b = ref.state_dict(), seg.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same names, same init
    torch.manual_seed(2)
    seg.load_state_dict(StyleGAN2(**args).state_dict())
    torch.manual_seed(2)
    ref = StyleGAN2(**args)
    z = torch.randn(4, 8)
    for ema in (True, False):
        assert torch.equal(ref.sample(z, ema=ema), seg.sample(z, ema=ema))
    img = torch.randn(4, 3, 16, 16)
    assert torch.equal(ref.D(img), seg.D(img))


# ----------------------------------------------------------------------------------------------
# Arguments: SEGAN's own, StyleGAN2's by keyword; channels from the colour space.


def test_segan_passes_stylegan2_arguments_on_and_old_checkpoints_load(tmp_path):
    """SEGAN takes its own arguments and hands StyleGAN2's on by keyword; all are recorded, so
    ``load_module`` rebuilds it. The networks' channels follow the colour space. A checkpoint from
    before that (``img_channels`` among its hyper_parameters) still loads; a disagreeing
    ``img_channels`` is one clear error."""
    torch.manual_seed(0)
    seg = SEGAN(**TINY_G, mbstd_group=2, colorspace="gray", mode=2, g_channel_max=4, use_noise=False)
    hp = dict(seg.hparams)
    assert (hp["mode"], hp["g_channel_max"], hp["d_channel_max"], hp["z_dim"], hp["use_noise"]) == (
        2,
        4,
        None,
        8,
        False,
    )
    assert hp["conv_clamp"] is None and hp["map_lr_multiplier"] == 0.01 and "img_channels" not in hp
    assert seg.G.img_channels == seg.D.img_channels == 1
    assert max(b.out_channels for b in seg.G.synthesis.blocks) == 4  # g_channel_max; D keeps channel_max 8
    assert max(b.out_channels for b in seg.D.blocks) == 8
    for name, extra in (("new", {}), ("old", {"img_channels": 1})):
        ckpt = {
            "state_dict": seg.state_dict(),
            "hyper_parameters": {**hp, **extra},
            "gamut": {"module": "src.modules.segan.module.SEGAN", "cur_nimg": 0, "iteration": 0},
        }
        torch.save(ckpt, tmp_path / f"{name}.ckpt")
        loaded = load_module(tmp_path / f"{name}.ckpt")
        z = torch.randn(2, 8)
        assert type(loaded) is SEGAN and torch.equal(loaded.sample(z), seg.sample(z))
    with pytest.raises(ValueError, match=r"model.img_channels=3 does not match colorspace.name='gray'"):
        SEGAN(**TINY_G, mbstd_group=2, colorspace="gray", img_channels=3)


def test_export_rebuilds_segan_as_trained(tmp_path):
    """The safetensors export records the generator's own arguments: SEGAN's subspace settings and
    ``g_channel_max`` (not the module's shared ``channel_max``) come back, and so do the images."""
    torch.manual_seed(0)
    seg = SEGAN(
        **TINY_G,
        mbstd_group=2,
        colorspace="lab",
        mode=2,
        subspace=dict(variant="eigen", coords="sampled", q=3, L_init="eigengan"),
        g_channel_max=4,
    )
    export_generator(seg, tmp_path / "G.safetensors")
    g, cs, config = load_generator(tmp_path / "G.safetensors")
    syn = g.synthesis
    assert (syn.mode, syn.variant, syn.coords, syn.q) == (2, "eigen", "sampled", 3)
    assert config["kwargs"]["channel_max"] == 4 and config["kwargs"]["img_channels"] == 3 and cs.name == "lab"
    z, coords = torch.randn(2, 8), torch.randn(2, syn.num_layers, 3)
    with torch.no_grad():
        assert torch.equal(g(z, coords=coords, noise_mode="const"), seg.sample(z, coords=coords))


# ----------------------------------------------------------------------------------------------
# Training through the real configs: every mode trains, resumes bit-exactly, loads and generates.


def _state(log_dir: Path, name: str) -> dict:
    return torch.load(log_dir / "quickstart" / name / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.parametrize("mode,variant", MODES)
def test_every_mode_trains_and_resumes_exactly(tiny_cfg, log_dir, tmp_path, mode, variant):
    from tests.test_train import _assert_same_state

    common = [
        "model=segan",
        f"model.mode={mode}",
        f"model.subspace.variant={variant}",
        "model.loss.r1_interval=2",
        "model.loss.pl_interval=2",
        "model.d_channel_max=8",
        "callbacks.sample_grid.every_kimg=100",
    ]
    if variant == "eigen":
        common.append("model.loss.orth_reg.weight=1.0")
    metrics = train(tiny_cfg("trainer.max_steps=4", *common, run_name="straight"))
    if variant == "eigen":
        assert "G/orth" in metrics and metrics["G/orth"] >= 0
    train(tiny_cfg("trainer.max_steps=2", *common, run_name="split"))
    train(tiny_cfg("trainer.max_steps=4", "ckpt_path=last", *common, run_name="split"))
    a, b = _state(log_dir, "straight"), _state(log_dir, "split")
    _assert_same_state(a, b)
    assert a["gamut"]["module"] == "src.modules.segan.module.SEGAN"
    # separate channel_max: G keeps model.channel_max=16, D uses model.d_channel_max=8
    assert a["state_dict"]["G.synthesis.blocks.0.const"].shape[0] == 16
    assert a["state_dict"]["D.epilogue.fc.weight"].shape == (8, 8 * 16)
    # loads for inference and works with scripts/generate.py
    ckpt = log_dir / "quickstart" / "straight" / "checkpoints" / "last.ckpt"
    model = load_module(ckpt)
    assert isinstance(model, SEGAN) and model.mode == mode
    paths = generate.generate(generate.parse_args([f"ckpt={ckpt}", "seeds=0-1", f"out={tmp_path / 'gen'}"]))
    assert len(paths) == 2 and all(p.is_file() for p in paths)


@pytest.mark.parametrize(
    "override,key",
    [
        ("model.mode=7", "model.mode=7"),
        ("model.subspace.variant=eigen", "model.subspace.variant='eigen' does not apply to model.mode=1"),
    ],
)
def test_bad_segan_config_stops_before_writing(tiny_cfg, log_dir, override, key):
    cfg = tiny_cfg("model=segan", "model.mode=1", override)
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert key in str(err.value)
    assert not (log_dir / "quickstart" / "test").exists()


# ----------------------------------------------------------------------------------------------
# Experiment presets reproduce the SEGAN README ("Hyperparameters").


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_segan_readme_experiments(mode):
    from tests.conftest import compose_cfg

    cfg = compose_cfg([f"experiment=segan_danbooru64_mode{mode}", "data.root=/data/danbooru"])
    m, d = cfg.model, cfg.data
    assert cfg.task_name == "segan_danbooru64" and m.mode == mode
    assert (d.resolution, d.batch_size, m.z_dim, m.w_dim) == (64, 16, 64, 64)
    assert (m.optim.g_lr, m.optim.d_lr, m.loss.r1_gamma, m.loss.r1_interval, m.loss.pl_interval) == (
        0.002,
        0.002,
        10,
        16,
        4,
    )
    assert (m.g_channel_max, m.d_channel_max, m.loss.style_mixing_prob) == (128, 512, 0.0)
    assert cfg.trainer.max_kimg == 800 and cfg.trainer.max_steps is None  # their 50 000 iterations x 16
    assert cfg.data.root == "/data/danbooru" and cfg.data.xflip
    assert cfg.callbacks.traversal._target_ == "src.callbacks.traversal.TraversalGrid"
    assert f"mode{mode}" in cfg.logger.mlflow.run_name
