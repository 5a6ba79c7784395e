"""2-process DDP on CPU (gloo) through the real CLI: ranks stay identical and match one process
(StyleGAN2 below; ChromaGAN with its BatchNorm synced, at the end), and gamut's SyncBatchNorm on its own.

StyleGAN2 with R1 and path length both active in the steps run (intervals 2 and 3, so lazy and
non-lazy iterations mix), and SEGAN with sampled subspace coordinates. Noise inputs are off: per-layer
noise is drawn per rank, everything else (latents, mixing, path-length noise, SEGAN's coordinates) is
drawn for the global batch (module docstring).
Adam's eps is 1e-3 here: with the default 1e-8, a gradient element of size ~eps turns the float32
rounding difference between "mean of 2 rank means" and "mean of 8" into a step difference of up to
~1e-4 in that one element (measured: 9.9e-5 in one D weight, every other element < 6e-7); with
eps=1e-3 the largest difference after 4 iterations is about 3e-7.
To add a family, add a parametrize entry (its tiny overrides and the parameter prefixes to compare).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from src.train import train
from tests.conftest import TINY, compose_cfg

ROOT = Path(__file__).resolve().parents[1]
STEPS = 4


class DumpRankState(Callback):
    """Test helper: each rank writes its module state to ``<dirpath>/rank<r>.pt`` at the end (and
    ``start<r>.pt`` at the start of training)."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def _dump(self, pl_module, name: str) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}, self.dirpath / name)

    def on_train_start(self, trainer, pl_module) -> None:
        self._dump(pl_module, f"start{trainer.global_rank}.pt")

    def on_train_end(self, trainer, pl_module) -> None:
        self._dump(pl_module, f"rank{trainer.global_rank}.pt")


def run_two_ranks(overrides: list[str], dump: Path, log_dir: Path, logger: str = "none") -> tuple[dict, dict]:
    """``python -m src.train overrides trainer=ddp`` with 2 CPU processes; returns both ranks' final states."""
    cmd = [
        sys.executable,
        "-m",
        "src.train",
        *overrides,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        f"logger={logger}",
        "run_name=ddp",
        "+callbacks.dump._target_=tests.test_ddp.DumpRankState",
        f"+callbacks.dump.dirpath={dump}",
    ]
    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return torch.load(dump / "rank0.pt", weights_only=True), torch.load(dump / "rank1.pt", weights_only=True)


# ----------------------------------------------------------------------------------------------
# gamut's SyncBatchNorm (src/nn/sync_batchnorm.py) against nn.BatchNorm2d on the full batch.


def _sync_bn_case():
    """A conv, a BatchNorm (momentum and eps not the defaults) and a ReLU, with non-trivial affine
    parameters; a batch of 8 and the weights of a loss with a gradient-penalty-like double backward."""
    g = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4, eps=1e-3, momentum=0.3), torch.nn.ReLU()
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if p is net[1].weight else 0.0))
    x = torch.randn(8, 3, 6, 5, generator=g) * 2 + 1
    w1, w2 = torch.randn(2, 8, 4, 4, 3, generator=g)
    return net, x, w1, w2


def _sync_bn_loss(net, x, w1, w2):
    """Mean over the batch of a linear term plus a penalty on d(tanh(net(x)) . w2)/dx (double backward)."""
    y = net(x)
    (gx,) = torch.autograd.grad((torch.tanh(y) * w2).sum(), x, create_graph=True)
    return ((y * w1).flatten(1).sum(1) + gx.square().flatten(1).sum(1)).mean(), y


def _sync_bn_worker(rank: int, world: int, store: str, out: str) -> None:
    """One rank: rows ``rank::world`` of the batch through the converted net, 2 training iterations
    (gradients averaged over the ranks as ``GANModule.step`` does), then eval and bf16 autocast."""
    import torch.distributed as dist

    from src.nn.sync_batchnorm import SyncBatchNorm

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        net, x, w1, w2 = _sync_bn_case()
        net = SyncBatchNorm.convert(net)
        assert isinstance(net[1], SyncBatchNorm)
        result = {}
        for it in range(2):
            xr = x[rank::world].clone().requires_grad_(True)
            loss, y = _sync_bn_loss(net, xr, w1[rank::world], w2[rank::world])
            net.zero_grad()
            loss.backward()
            for name, p in net.named_parameters():
                dist.all_reduce(p.grad)
                p.grad /= world
                result[f"{it}/grad/{name}"] = p.grad.clone()
            result[f"{it}/y"], result[f"{it}/xgrad"] = y.detach(), xr.grad
            with torch.no_grad():
                for p in net.parameters():
                    p -= 0.1 * p.grad
        result["buffers"] = {k: v.clone() for k, v in net.named_buffers()}
        result["state"] = {k: v.clone() for k, v in net.state_dict().items()}
        net.eval()
        result["eval"] = net(x).detach()  # the full batch on every rank: no exchange in eval mode
        net.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            result["bf16"] = net[1](net[0](x[rank::world])).detach()
        torch.save(result, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_sync_batchnorm_two_processes_match_batchnorm(tmp_path):
    """2 gloo processes with half a batch each == nn.BatchNorm2d on the whole batch: outputs, input
    gradients, averaged parameter gradients (conv in front included, double backward included) and
    running statistics over 2 iterations; eval mode is nn.BatchNorm2d exactly (no exchange); under bf16
    autocast the output keeps the input dtype and the statistics are float32."""
    import torch.multiprocessing as mp

    world = 2
    mp.spawn(_sync_bn_worker, args=(world, str(tmp_path / "store"), str(tmp_path)), nprocs=world)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]

    net, x, w1, w2 = _sync_bn_case()
    for it in range(2):
        xf = x.clone().requires_grad_(True)
        loss, y = _sync_bn_loss(net, xf, w1, w2)
        net.zero_grad()
        loss.backward()
        for r, res in enumerate(ranks):
            torch.testing.assert_close(res[f"{it}/y"], y.detach()[r::world], rtol=0, atol=1e-5)
            # each rank's loss is the mean over its half: its input gradient is world x the full-batch one
            torch.testing.assert_close(res[f"{it}/xgrad"], world * xf.grad[r::world], rtol=1e-4, atol=1e-6)
            for name, p in net.named_parameters():
                torch.testing.assert_close(
                    res[f"{it}/grad/{name}"],
                    p.grad,
                    rtol=1e-4,
                    atol=1e-6,
                    msg=lambda m, name=name: f"iteration {it}, {name}: {m}",
                )
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.1 * p.grad
    assert torch.equal(ranks[0]["1/grad/1.weight"], ranks[1]["1/grad/1.weight"])
    for name, ref in net.named_buffers():
        for res in ranks:
            torch.testing.assert_close(res["buffers"][name], ref, rtol=1e-6, atol=1e-6)
        assert torch.equal(ranks[0]["buffers"][name], ranks[1]["buffers"][name])  # same on every rank
    assert int(ranks[0]["buffers"]["1.num_batches_tracked"]) == 2

    net.eval()
    plain = copy.deepcopy(net)
    for res in ranks:
        plain.load_state_dict(res["state"])  # the rank's own weights and statistics in nn.BatchNorm2d
        with torch.no_grad():
            assert torch.equal(res["eval"], plain(x))
            torch.testing.assert_close(res["eval"], net(x), rtol=1e-5, atol=1e-5)
    net.train()
    with torch.no_grad():
        ref_bf16 = net[1](net[0](x))
    for r, res in enumerate(ranks):
        assert res["bf16"].dtype == torch.bfloat16
        torch.testing.assert_close(res["bf16"].float(), ref_bf16[r::world], rtol=2e-2, atol=5e-2)


def test_sync_batchnorm_convert_keeps_state_and_reverts():
    """``SyncBatchNorm.convert`` swaps BatchNorm1d/2d/3d (nested too) for SyncBatchNorm with the same
    state-dict keys and values, the same Parameter objects (requires_grad kept) and the same mode; one
    process (no torch.distributed) computes exactly BatchNorm's output and running statistics;
    ``revert`` gives the original classes back. The Lightning plugin picks it without NCCL."""
    from src.nn.layer_sync import SyncBatchNormPlugin
    from src.nn.sync_batchnorm import SyncBatchNorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 1),
        torch.nn.BatchNorm2d(4, momentum=None),
        torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.BatchNorm1d(4, affine=False)),
        torch.nn.Unflatten(2, (2, 3)),
        torch.nn.Unflatten(2, (1, 2)),
        torch.nn.BatchNorm3d(4, track_running_stats=False),
    )
    net(torch.randn(5, 3, 2, 3))  # non-trivial running statistics
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.5)
    net[1].bias.requires_grad_(False)
    net[2].eval()
    ref = copy.deepcopy(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    bias = net[1].bias

    conv = SyncBatchNorm.convert(net)
    assert conv is net
    assert [type(m) for m in (net[1], net[2][1], net[5])] == [SyncBatchNorm] * 3
    after = net.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert net[1].bias is bias and not net[1].bias.requires_grad and net[1].weight.requires_grad
    assert not net[2][1].training and net[1].training and net[1].momentum is None
    ref.load_state_dict(after)  # a synced model's checkpoint loads into the plain one, and back
    net.load_state_dict(ref.state_dict())

    x = torch.randn(6, 3, 2, 3)
    assert torch.equal(net(x), ref(x))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref.state_dict().values()))
    with pytest.raises(ValueError, match="expected 4D input"):
        net[1](torch.randn(2, 4))  # the replaced layer's own shape check

    net = SyncBatchNorm.revert(net)
    assert [type(m) for m in (net[1], net[2][1], net[5])] == [
        torch.nn.BatchNorm2d,
        torch.nn.BatchNorm1d,
        torch.nn.BatchNorm3d,
    ]
    assert net[1].bias is bias and list(net.state_dict()) == list(before)

    plugin = SyncBatchNormPlugin()
    plugin.revert(plugin.apply(net))
    assert isinstance(plugin.apply(net)[1], SyncBatchNorm)
    assert type(plugin.revert(net)[1]) is torch.nn.BatchNorm2d


STYLEGAN2 = [
    "model.use_noise=false",
    "model.loss.r1_interval=2",
    "model.loss.pl_interval=3",
    "model.loss.pl_batch_shrink=2",
    "model.mbstd_group=2",
    "model.loss.r1_gamma=1.0",
    "model.ema.kimg=0.01",
    "model.ema.rampup=null",
    "model.optim.eps=1e-3",
]  # Adam eps >> rounding of near-zero grads (see docstring)
FAMILIES = {
    "stylegan2": STYLEGAN2,
    # SEGAN's sampled per-layer coordinates z_l are drawn for the global batch too (the orthogonality
    # term on: every G step adds it)
    "segan_sampled": [
        *STYLEGAN2,
        "model=segan",
        "model.mode=2",
        "model.subspace.variant=eigen",
        "model.subspace.coords=sampled",
        "model.subspace.q=4",
        "model.loss.orth_reg.weight=1.0",
    ],
    # ADA on a D that overfits at once: the augmentation draws are made for the global batch, r_t is
    # summed over ranks, so p moves as one process's does (p starts at 0.5, interval 1: it moves every step)
    "stylegan2_ada": [
        *STYLEGAN2,
        "model.augment.mode=ada",
        "model.augment.pipeline=bgcfnc",
        "model.augment.p=0.5",
        "model.augment.interval=1",
        "model.augment.kimg=0.1",
    ],
    # StyleGAN3 config R (1x1 convs, radial filters, D's images blurred): the input magnitude EMAs average
    # every rank's inputs (one all_reduce per layer), so they move as one process's do
    "stylegan3_r": [
        *STYLEGAN2,
        "model=stylegan3",
        "model.conv_kernel=1",
        "model.use_radial_filters=true",
        "model.blur.sigma=2",
        "model.blur.fade_kimg=0.1",
    ],
    # a size of the form (b_h * 2**k, b_w * 2**k): a 3x5 constant and 4 doublings
    "stylegan2_48x80": [*STYLEGAN2, "data.resolution=[48,80]"],
}


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_ddp_two_processes_match_one_process(family, tmp_path, log_dir):
    extra = FAMILIES[family]
    common = [
        *[o for o in TINY if not o.startswith("data.batch_size")],
        *extra,
        f"trainer.max_steps={STEPS}",
        "callbacks.sample_grid.every_kimg=1",
        "callbacks.checkpoint.every_kimg=1",
    ]
    r0, r1 = run_two_ranks([*common, "data.batch_size=4"], tmp_path / "ranks", log_dir, logger="csv")
    trained = [k for k in r0 if k.startswith(("G.", "D.", "G_ema.")) and r0[k].is_floating_point()]
    tracked = ["pl_mean"] + [k for k in r0 if k.startswith("augmentation.")]
    # w_avg (G's and G_ema's copy) is the running mean of every rank's w: one all_reduce per Dmain
    assert {"G.mapping.w_avg", "G_ema.mapping.w_avg"} <= set(trained)
    for k in trained + tracked:
        assert torch.equal(r0[k], r1[k]), f"ranks differ in {k}"

    # one run folder for both ranks (Hydra's run dir is shared, no per-rank folders), rank 0 writes
    rd = log_dir / "quickstart" / "ddp"
    assert sorted(p.name for p in (log_dir / "quickstart").iterdir()) == ["ddp"]
    ddp_state = torch.load(rd / "checkpoints" / "last.ckpt", weights_only=True)
    assert ddp_state["gamut"]["cur_nimg"] == 8 * STEPS and ddp_state["gamut"]["iteration"] == STEPS

    # one process, same global batch
    train(compose_cfg([*common, "data.batch_size=8", "logger=none", "run_name=single"]))
    single = torch.load(log_dir / "quickstart" / "single" / "checkpoints" / "last.ckpt", weights_only=True)[
        "state_dict"
    ]
    diffs = {
        k: (single[k] - r0[k]).abs().max().item()
        for k in trained + tracked
        if single[k].is_floating_point() and not single[k].isnan().any()
    }
    # w_avg: the one process's is computed from all 8 rows of w, the two ranks' from 4 rows each and
    # one all_reduce; a rank tracking its own rows only would be off by far more than the tolerance
    start = torch.load(tmp_path / "ranks" / "start0.pt", weights_only=True)
    moved = (r0["G.mapping.w_avg"] - start["G.mapping.w_avg"]).abs().max().item()
    print(f"w_avg moved by {moved:.3g}; |w_avg(DDP 2x4) - w_avg(1x8)| = {diffs['G.mapping.w_avg']:.3g}")
    assert moved > 100 * 1e-5, moved
    assert diffs["G.mapping.w_avg"] < 1e-5 and diffs["G_ema.mapping.w_avg"] < 1e-5
    worst = max(diffs.values())
    print(f"max |param(DDP 2x4) - param(1x8)| after {STEPS} iterations: {worst:.3g}")
    assert worst < 1e-5
    assert single["pl_mean"] != 0  # path length ran
    emas = [k for k in trained if k.endswith("magnitude_ema")]
    if emas:  # StyleGAN3: the magnitude EMAs moved, identically on both ranks and as in one process
        assert all(abs(single[k].item() - 1) > 1e-6 for k in emas)
    if "augmentation.pipe.p" in single:
        assert single["augmentation.pipe.p"] != 0.5  # ADA adjusted p, identically in both runs


@pytest.mark.slow
def test_ddp_chromagan_gradient_penalty_matches_one_process(tmp_path, log_dir):
    """ChromaGAN on 2 CPU processes (WGAN-GP double backward, KL to the teacher, G's BatchNorm synced
    over gloo by ``trainer=ddp``'s ``sync_batchnorm``): G, D and the BatchNorm running statistics are
    bit-identical across ranks and equal within 1e-5 to one process with the same global batch.

    Each rank's data are rows ``rank::2`` of the 1-process batch (the sampler's sharding) and the
    penalty's alpha is drawn for the global batch (``GANModule.draw``), as in the StyleGAN2 test.
    Learning rates are 10x the default so that 4 iterations move the weights by ~5e-4, far above the
    tolerance. Adam's eps is 1e-3 for the reason in the module docstring: the conv biases in front of
    a BatchNorm have an exactly-zero true gradient (the BatchNorm subtracts the mean), so their
    gradients are float32 rounding noise, and with eps=1e-7 Adam turns that noise into steps of up to
    the learning rate (measured at the default lr: 4.1e-6 in one such bias, every other element < 3e-7).
    Measured: 1.2e-7 with sync, 1.4e-2 in the running statistics with ``trainer.sync_batchnorm=false``.
    """
    import torchvision

    from tests.test_chromagan import TINY_CHROMA
    from tests.test_tinyimagenet import make_tiny_imagenet

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), weights / "vgg16-397923af.pth")
    root = make_tiny_imagenet(tmp_path, per_class=4)
    common = [
        "experiment=chromagan_tinyimagenet",
        f"data.root={root}",
        f"paths.weights_dir={weights}",
        "model.num_classes=3",
        "model.trunk_pretrained=false",
        *[o for o in TINY_CHROMA if not o.startswith(("data.batch_size", "trainer.val_check_interval"))],
        "trainer.limit_val_batches=0",
        f"trainer.max_steps={STEPS}",
        "model.optim.g_lr=2e-4",
        "model.optim.d_lr=2e-4",
        "model.optim.eps=1e-3",
    ]  # see docstring
    assert compose_cfg(common).model.loss.lambda_gp > 0
    r0, r1 = run_two_ranks([*common, "data.batch_size=2"], tmp_path / "ranks", log_dir)
    compared = [k for k in r0 if k.startswith(("G.", "D.")) and r0[k].is_floating_point()]
    stats = [k for k in compared if k.endswith(("running_mean", "running_var"))]
    params = [k for k in compared if k not in stats]
    assert stats and params
    for k in compared:
        assert torch.equal(r0[k], r1[k]), f"ranks differ in {k}"
    state = torch.load(log_dir / "chromagan_tinyimagenet" / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["cur_nimg"] == 4 * STEPS and state["gamut"]["iteration"] == STEPS
    assert set(state["state_dict"]) == set(r0)  # BatchNorm's own keys: checkpoints load either way

    # one process, same global batch
    train(compose_cfg([*common, "data.batch_size=4", "logger=none", "run_name=single"]))
    single = torch.load(log_dir / "chromagan_tinyimagenet" / "single" / "checkpoints" / "last.ckpt", weights_only=True)[
        "state_dict"
    ]
    assert set(single) == set(r0)
    diff = {k: (single[k] - r0[k]).abs().max().item() for k in compared}
    worst_param, worst_stat = max(params, key=diff.get), max(stats, key=diff.get)
    print(
        f"max |DDP 2x2 - 1x4| after {STEPS} iterations: parameters {diff[worst_param]:.3g} ({worst_param}), "
        f"BatchNorm statistics {diff[worst_stat]:.3g} ({worst_stat})"
    )
    assert diff[worst_param] < 1e-5 and diff[worst_stat] < 1e-5
    nbt = [k for k in r0 if k.endswith("num_batches_tracked")]
    assert nbt and all(single[k] == r0[k] == r1[k] for k in nbt)
    start = torch.load(tmp_path / "ranks" / "start0.pt", weights_only=True)
    moved = max((single[k] - start[k]).abs().max().item() for k in params)
    assert moved > 10 * 1e-5, moved  # the tolerance is small against what training changed


# ----------------------------------------------------------------------------------------------
# Metrics under DDP: each rank generates and reads its share; the features are gathered, so every
# rank reports the same values, computed over every image exactly once.


class DumpMetrics(Callback):
    """Test helper: each rank writes the metric values it holds in ``trainer.callback_metrics``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer, pl_module) -> None:
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("fid5", "pr53"))}
        self.dirpath.mkdir(parents=True, exist_ok=True)
        (self.dirpath / f"metrics{trainer.global_rank}.json").write_text(json.dumps(values))


@pytest.mark.slow
def test_ddp_metrics_agree_on_both_ranks_and_count_every_image(tmp_path, log_dir, weights_dir):
    dump = tmp_path / "dump"
    overrides = [
        *TINY,
        "trainer.max_steps=2",
        "callbacks=[default,metrics]",
        "callbacks.metrics.every_kimg=0.008",  # after each of the 2 steps (8 images a step over both ranks)
        "callbacks.metrics.metrics=[fid5,pr53]",  # 5 images: 3 on rank 0, 2 on rank 1
        "callbacks.metrics.batch_size=2",
        f"paths.weights_dir={weights_dir}",
        "+callbacks.metrics_dump._target_=tests.test_ddp.DumpMetrics",
        f"+callbacks.metrics_dump.dirpath={dump}",
    ]
    run_two_ranks(overrides, dump, log_dir)
    rank0, rank1 = (json.loads((dump / f"metrics{r}.json").read_text()) for r in (0, 1))
    assert set(rank0) == {"fid5", "pr53_precision", "pr53_recall"} and rank0 == rank1
    lines = [json.loads(line) for line in (log_dir / "quickstart" / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [line["kimg"] for line in lines] == [0.008, 0.016]
    last = lines[-1]["metrics"]
    for name in ("fid5", "pr53"):
        assert (last[name]["protocol"]["num_gen"], last[name]["protocol"]["num_real"]) == (5, 5)
    assert last["fid5"]["values"]["fid5"] == pytest.approx(rank0["fid5"])
