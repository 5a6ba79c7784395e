"""StyleGAN2's training step held to what it computes, on tiny networks in a real Lightning Trainer.

Every expected value comes from a closed form, a hand-written autograd expression or finite
differences in float64, never from ``src.modules.stylegan2.losses``:

* lazy regularization (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN",
  §3.1; NVlabs/stylegan3 training/training_loop.py, ``mb_ratio``): Greg runs when
  ``iteration % pl_interval == 0`` with its gradient times ``pl_interval``, Dreg when
  ``iteration % r1_interval == 0`` times ``r1_interval``; Adam gets ``lr * c`` and ``betas ** c``
  with ``c = k / (k + 1)``;
* R1 (Mescheder et al. 2018, Eq. 9) is ``gamma / 2 * E ||grad_x D(x)||^2``;
* path length (Karras et al. 2020, Eq. 4): ``pl_weight * (||J_w^T y|| - a)^2`` with ``a`` the running
  mean ``a + decay * (mean(lengths) - a)`` (NVlabs/stylegan3 training/loss.py, ``pl_mean.lerp``);
* G_ema's ``beta = 0.5 ** (batch / max(ema_nimg, 1e-8))``, ``ema_nimg = min(ema_kimg * 1000,
  cur_nimg * rampup)`` with ``cur_nimg`` before the iteration (NVlabs/stylegan3
  training/training_loop.py);
* style mixing with probability ``style_mixing_prob``, cutoff ~ U{1, ..., num_ws - 1}, and ``w_avg``
  updated only where D's fakes are drawn (NVlabs/stylegan3 training/loss.py, ``update_emas``).

The recorded fit (:func:`recorded`) keeps, for every phase, the weights it started from, the
gradient handed to the optimizer (read in ``on_before_optimizer_step``, after any cleaning) and the
inputs it drew, so each phase can be recomputed on its own.
"""

from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch

from src.modules.stylegan2.module import StyleGAN2

Z, W, RES, BATCH = 8, 8, 8, 4
PL_INTERVAL, R1_INTERVAL, ITERATIONS = 4, 3, 9
LOSS = dict(
    r1_gamma=0.7,
    r1_interval=R1_INTERVAL,
    pl_weight=2.0,
    pl_decay=0.25,
    pl_batch_shrink=2,
    pl_interval=PL_INTERVAL,
    style_mixing_prob=0.0,
)
EMA = dict(kimg=0.01, rampup=1.0)  # ema_nimg = min(10, cur_nimg): beta 0, 0.5, 0.5 ** 0.5, then 0.5 ** 0.4


def tiny(cls=StyleGAN2, resolution: int = RES, **kwargs) -> StyleGAN2:
    options = dict(
        img_channels=3,
        resolution=resolution,
        z_dim=Z,
        w_dim=W,
        map_depth=2,
        channel_base=32,
        channel_max=8,
        mbstd_group=2,
        use_noise=False,
        check_finite_every=0,
    )
    return cls(**{**options, **kwargs})


class FixedImages(torch.utils.data.Dataset):
    """The same ``BATCH`` images in [-1, 1] over and over (a long epoch)."""

    def __init__(self, resolution: int = RES) -> None:
        self.images = torch.rand(BATCH, 3, resolution, resolution, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def __len__(self) -> int:
        return 1000

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i % BATCH]}


def fit(model, iterations: int, **trainer_kwargs):
    """``iterations`` training iterations of ``model`` in a CPU Trainer (the module counts iterations)."""
    import pytorch_lightning as pl

    from src.callbacks.limits import bare_trainer

    pl.seed_everything(0, verbose=False)
    trainer = bare_trainer(iterations, **trainer_kwargs)
    loader = torch.utils.data.DataLoader(FixedImages(model.resolution[0]), batch_size=BATCH)
    trainer.fit(model, train_dataloaders=loader)
    return model


def _clone(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


class Recording(StyleGAN2):
    """StyleGAN2 that records each phase: weights at its start, the optimizer's gradient, its draws."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.record: list[dict] = []
        self.ema_record: list[dict] = []
        self._entry: dict | None = None
        self.G.mapping.register_forward_pre_hook(self._on_mapping)
        self.G.synthesis.register_forward_hook(self._after_synthesis)
        self.D.register_forward_pre_hook(self._on_d)

    def _now(self, *names: str) -> dict | None:
        return self._entry if self._entry is not None and self._entry["name"] in names else None

    def _on_mapping(self, module, args) -> None:
        if (e := self._now("Greg", "Dmain")) is not None:
            e.setdefault("z", args[0].detach().clone())

    def _after_synthesis(self, module, args, out) -> None:
        if (e := self._now("Greg")) is not None:  # the path-length noise is the next draw
            e["rng"], e["img_shape"] = torch.get_rng_state(), tuple(out.shape)

    def _on_d(self, module, args) -> None:
        if (e := self._now("Dreg")) is not None:
            e["real"] = args[0].detach().clone()

    @contextlib.contextmanager
    def phase(self, name: str):
        entry = dict(
            name=name,
            it=self.iteration,
            G=_clone(self.G),
            D=_clone(self.D),
            w_avg=self.G.mapping.w_avg.clone(),
            pl_mean=self.pl_mean.clone(),
        )
        self._entry = entry
        self.record.append(entry)
        try:
            yield
        finally:
            entry["w_avg_after"] = self.G.mapping.w_avg.clone()
            entry["pl_mean_after"] = self.pl_mean.clone()
            self._entry = None

    def on_before_optimizer_step(self, optimizer) -> None:
        super().on_before_optimizer_step(optimizer)
        net = self.G if optimizer.param_groups[0]["params"][0] is next(self.G.parameters()) else self.D
        self._entry["net"] = "G" if net is self.G else "D"
        self._entry["grad"] = {
            k: (torch.zeros_like(p) if p.grad is None else p.grad.clone()) for k, p in net.named_parameters()
        }

    def update_ema(self, global_batch: int) -> None:
        before = _clone(self.G_ema)
        super().update_ema(global_batch)
        self.ema_record.append(
            dict(cur_nimg=self.cur_nimg, batch=global_batch, before=before, G=_clone(self.G), after=_clone(self.G_ema))
        )


@pytest.fixture(scope="module")
def recorded() -> Recording:
    torch.manual_seed(0)
    return fit(tiny(Recording, loss=LOSS, ema=EMA), ITERATIONS)


def _entries(model: Recording, name: str) -> list[dict]:
    return [e for e in model.record if e["name"] == name]


def _float64_copy(net: torch.nn.Module, params: dict[str, torch.Tensor]) -> torch.nn.Module:
    net = copy.deepcopy(net).double()
    with torch.no_grad():
        for k, p in net.named_parameters():
            p.copy_(params[k].double())
    return net.requires_grad_(True)


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1).double() for t in tensors])


def _with_params(net: torch.nn.Module, flat: torch.Tensor) -> torch.nn.Module:
    """A copy of ``net`` whose parameters are the float64 vector ``flat`` (names in ``named_parameters`` order)."""
    net = copy.deepcopy(net)
    with torch.no_grad():
        offset = 0
        for p in net.parameters():
            p.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
    return net


def _directional_fd(f, net: torch.nn.Module, v: torch.Tensor, eps: float = 1e-4) -> float:
    theta = _flat(p.detach() for p in net.parameters())
    return (f(_with_params(net, theta + eps * v)) - f(_with_params(net, theta - eps * v))) / (2 * eps)


# ------------------------------------------------------------------------------------------------
# Lazy intervals: which iterations run a regularizer phase.


def test_phases_run_in_order_and_regularizers_only_on_their_intervals(recorded):
    by_iteration = {}
    for e in recorded.record:
        by_iteration.setdefault(e["it"], []).append(e["name"])
    assert sorted(by_iteration) == list(range(ITERATIONS))
    for it, names in by_iteration.items():
        expected = (
            ["Gmain"]
            + (["Greg"] if it % PL_INTERVAL == 0 else [])
            + ["Dmain"]
            + (["Dreg"] if it % R1_INTERVAL == 0 else [])
        )
        assert names == expected, it
    assert [e["it"] for e in _entries(recorded, "Greg")] == [0, 4, 8]
    assert [e["it"] for e in _entries(recorded, "Dreg")] == [0, 3, 6]
    assert all(e["net"] == ("G" if e["name"].startswith("G") else "D") for e in recorded.record)


# ------------------------------------------------------------------------------------------------
# Dreg: interval x gamma/2 x grad E||grad_x D(x)||^2.


def _r1(D: torch.nn.Module, real: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """E_i ||grad_x D(x_i)||^2, written out (one backward; ``create_graph`` for a second one)."""
    x = real.double().requires_grad_(True)
    (g,) = torch.autograd.grad(D(x, None).sum(), x, create_graph=create_graph)
    return g.square().sum(dim=[1, 2, 3]).mean()


@pytest.mark.parametrize("which", [0, 1])
def test_r1_gradient_is_interval_times_half_gamma_times_the_penalty_gradient(recorded, which):
    entry = _entries(recorded, "Dreg")[which]
    D = _float64_copy(recorded.D, entry["D"])
    got = _flat(entry["grad"].values())
    gain = R1_INTERVAL * LOSS["r1_gamma"] / 2
    # hand-written double backward
    expected = _flat(
        g if g is not None else torch.zeros_like(p)
        for g, p in zip(
            torch.autograd.grad(_r1(D, entry["real"], True), list(D.parameters()), allow_unused=True), D.parameters()
        )
    )
    torch.testing.assert_close(got, gain * expected, rtol=1e-3, atol=1e-4 * expected.abs().max().item())
    # finite differences of the penalty along a random direction (no double backward at all)
    v = torch.randn(got.shape, generator=torch.Generator().manual_seed(which), dtype=torch.float64)
    v /= v.norm()
    fd = _directional_fd(lambda net: _r1(net, entry["real"], False).item(), D, v)
    assert (got @ v).item() == pytest.approx(gain * fd, rel=1e-3)


# ------------------------------------------------------------------------------------------------
# Greg: interval x pl_weight x grad (len - a')^2, and the running mean a'.


def _greg_inputs(model: Recording, entry: dict):
    G = _float64_copy(model.G, entry["G"])
    gen = torch.Generator().set_state(entry["rng"])
    shape = entry["img_shape"]
    noise = torch.randn(shape, generator=gen).double() / math.sqrt(shape[2] * shape[3])
    return G, entry["z"].double(), noise


def _lengths_autograd(G, z, noise, create_graph: bool) -> torch.Tensor:
    ws = G.mapping(z, None)
    (g,) = torch.autograd.grad((G.synthesis(ws) * noise).sum(), ws, create_graph=create_graph)
    return g.square().sum(dim=2).mean(dim=1).sqrt()


def _pl_loss(lengths: torch.Tensor, pl_mean: float) -> torch.Tensor:
    new_mean = pl_mean + LOSS["pl_decay"] * (lengths.mean() - pl_mean)
    return (lengths - new_mean).square().mean() * LOSS["pl_weight"]


@pytest.mark.parametrize("which", [0, 1])
def test_path_length_gradient_is_interval_times_the_penalty_gradient(recorded, which):
    """Iteration 0 (running mean 0) and iteration 4 (running mean from iteration 0)."""
    entry = _entries(recorded, "Greg")[which]
    G, z, noise = _greg_inputs(recorded, entry)
    pl_mean = entry["pl_mean"].item()
    assert (pl_mean == 0) == (which == 0)
    got = _flat(entry["grad"].values())
    loss = _pl_loss(_lengths_autograd(G, z, noise, True), pl_mean)
    expected = _flat(
        g if g is not None else torch.zeros_like(p)
        for g, p in zip(torch.autograd.grad(loss, list(G.parameters()), allow_unused=True), G.parameters())
    )
    torch.testing.assert_close(got, PL_INTERVAL * expected, rtol=1e-3, atol=1e-4 * expected.abs().max().item())
    v = torch.randn(got.shape, generator=torch.Generator().manual_seed(which), dtype=torch.float64)
    v /= v.norm()
    fd = _directional_fd(lambda net: _pl_loss(_lengths_autograd(net, z, noise, False), pl_mean).item(), G, v)
    assert (got @ v).item() == pytest.approx(PL_INTERVAL * fd, rel=1e-3)


def _lengths_fd(G, z, noise, eps: float = 1e-6) -> torch.Tensor:
    """||J_w^T y|| per sample by central differences: d<img, y>/dw_k for every coordinate k of ws."""
    with torch.no_grad():
        ws = G.mapping(z, None)
        n, num_ws, w_dim = ws.shape
        k = num_ws * w_dim
        steps = torch.eye(k, dtype=ws.dtype).view(k, 1, num_ws, w_dim) * eps
        plus = (ws.unsqueeze(0) + steps).reshape(k * n, num_ws, w_dim)
        minus = (ws.unsqueeze(0) - steps).reshape(k * n, num_ws, w_dim)
        y = noise.repeat(k, 1, 1, 1)
        diff = ((G.synthesis(plus) - G.synthesis(minus)) * y).sum(dim=[1, 2, 3]).view(k, n) / (2 * eps)
    return (diff.square().sum(dim=0) / num_ws).sqrt()


def test_pl_mean_follows_its_decay(recorded):
    """pl_mean' = pl_mean + decay * (mean(lengths) - pl_mean), lengths by finite differences."""
    entries = _entries(recorded, "Greg")
    for entry in entries:
        G, z, noise = _greg_inputs(recorded, entry)
        lengths = _lengths_fd(G, z, noise)
        torch.testing.assert_close(lengths, _lengths_autograd(G, z, noise, False).detach(), rtol=1e-6, atol=0)
        old = entry["pl_mean"].double()
        expected = old + LOSS["pl_decay"] * (lengths.mean() - old)
        assert abs(expected - old) > 1e-3  # the update is visible
        torch.testing.assert_close(entry["pl_mean_after"].double(), expected, rtol=1e-5, atol=1e-7)
    # it carries over between Greg iterations and changes nowhere else
    for before, after in zip(entries, entries[1:]):
        assert torch.equal(before["pl_mean_after"], after["pl_mean"])
    assert torch.equal(recorded.pl_mean, entries[-1]["pl_mean_after"])


# ------------------------------------------------------------------------------------------------
# Lazy Adam.


@pytest.mark.parametrize("pl_weight,r1_gamma", [(2.0, 10.0), (0.0, 10.0), (2.0, 0.0)])
def test_adam_gets_the_lazy_regularization_scaling(pl_weight, r1_gamma):
    """c = k/(k+1): lr*c and betas**c for a network with a lazy regularizer, the plain values without."""
    model = tiny(
        loss=dict(pl_interval=4, r1_interval=16, pl_weight=pl_weight, r1_gamma=r1_gamma),
        optim=dict(g_lr=0.002, d_lr=0.003, betas=(0.5, 0.99)),
    )
    opt_g, opt_d = model.configure_optimizers()
    g, d = opt_g.param_groups[0], opt_d.param_groups[0]
    if pl_weight > 0:
        assert g["lr"] == pytest.approx(0.002 * 0.8)
        assert g["betas"] == pytest.approx((0.5**0.8, 0.99**0.8))
    else:
        assert g["lr"] == 0.002 and tuple(g["betas"]) == (0.5, 0.99)
    if r1_gamma > 0:
        assert d["lr"] == pytest.approx(0.003 * 16 / 17)
        assert d["betas"] == pytest.approx((0.5 ** (16 / 17), 0.99 ** (16 / 17)))
    else:
        assert d["lr"] == 0.003 and tuple(d["betas"]) == (0.5, 0.99)
    assert {id(p) for p in g["params"]} == {id(p) for p in model.G.parameters()}
    assert {id(p) for p in d["params"]} == {id(p) for p in model.D.parameters()}


# ------------------------------------------------------------------------------------------------
# G_ema.


def _ema_beta(batch: int, kimg: float, rampup: float | None, cur_nimg: int) -> float:
    ema_nimg = kimg * 1000
    if rampup:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


def test_g_ema_follows_half_life_and_rampup_during_training(recorded):
    betas = []
    for i, r in enumerate(recorded.ema_record):
        assert r["cur_nimg"] == BATCH * i and r["batch"] == BATCH  # images seen before this iteration
        beta = _ema_beta(BATCH, EMA["kimg"], EMA["rampup"], r["cur_nimg"])
        betas.append(beta)
        for k in r["after"]:
            expected = r["G"][k].double() + beta * (r["before"][k].double() - r["G"][k].double())
            torch.testing.assert_close(r["after"][k].double(), expected, rtol=1e-6, atol=1e-6)
    assert betas[:4] == pytest.approx([0.0, 0.5, 0.5**0.5, 0.5**0.4])  # ramp-up, then the half-life
    # G and G_ema really differ after the ramp-up, so the values above test something
    last = recorded.ema_record[-1]
    assert max((last["after"][k] - last["G"][k]).abs().max().item() for k in last["G"]) > 1e-4


@pytest.mark.parametrize(
    "kimg,rampup,cur_nimg,batch",
    [
        (10.0, 0.05, 0, 32),  # ramp-up from 0: beta 0, G_ema = G
        (10.0, 0.05, 1000, 32),  # ramp-up: ema_nimg = 50
        (10.0, 0.05, 10**6, 32),  # past the ramp-up: the half-life, 10k images
        (0.02, None, 64, 8),  # no ramp-up
        (0.02, 0.0, 0, 8),  # rampup 0 = off
    ],
)
def test_update_ema_closed_form(kimg, rampup, cur_nimg, batch):
    torch.manual_seed(0)
    model = tiny(ema=dict(kimg=kimg, rampup=rampup))
    with torch.no_grad():
        for p in model.G.parameters():
            p.add_(torch.randn_like(p))
        model.G.mapping.w_avg.normal_()
    before, g = _clone(model.G_ema), _clone(model.G)
    model.cur_nimg = cur_nimg
    model.update_ema(batch)
    beta = _ema_beta(batch, kimg, rampup, cur_nimg)
    for k, p in model.G_ema.named_parameters():
        expected = g[k].double() + beta * (before[k].double() - g[k].double())
        torch.testing.assert_close(p.double(), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(model.G_ema.mapping.w_avg, model.G.mapping.w_avg)  # buffers are copied


# ------------------------------------------------------------------------------------------------
# Style mixing and w_avg.


@pytest.mark.parametrize("prob", [0.0, 0.3, 0.9])
def test_style_mixing_probability_and_cutoff(prob):
    torch.manual_seed(0)
    model = tiny(resolution=16, loss=dict(style_mixing_prob=prob))
    num_ws = model.G.num_ws
    assert num_ws == 6
    calls = []
    model.G.mapping.register_forward_pre_hook(lambda m, a: calls.append(1))
    draws, cutoffs = 1500, []
    with torch.no_grad():
        for _ in range(draws):
            ws = model._mapping(torch.randn(2, Z), None)
            differs = (ws != ws[:, :1]).any(dim=2).any(dim=0)  # layers that are not the first z's w
            first = int(differs.int().argmax()) if differs.any() else num_ws
            assert differs[first:].all()  # one cutoff: the second w from there to the end
            cutoffs.append(first)
    cutoffs = torch.tensor(cutoffs)
    mixed = cutoffs < num_ws
    if prob == 0:
        assert not mixed.any() and len(calls) == draws  # no second mapping either
        return
    sd = math.sqrt(prob * (1 - prob) / draws)
    assert abs(mixed.float().mean().item() - prob) < 4 * sd
    counts = torch.bincount(cutoffs[mixed], minlength=num_ws)
    assert counts[0] == 0  # cutoff 0 would replace every w: never
    expected = mixed.sum().item() / (num_ws - 1)
    chi2 = ((counts[1:] - expected).square() / expected).sum().item()
    assert chi2 < 18.5  # chi-square, 4 degrees of freedom, p = 0.001


def test_w_avg_moves_only_in_dmain(recorded):
    beta = recorded.G.mapping.w_avg_beta
    for e in recorded.record:
        if e["name"] != "Dmain":
            assert torch.equal(e["w_avg_after"], e["w_avg"]), (e["name"], e["it"])
            continue
        # w_avg' = beta * w_avg + (1 - beta) * mean(w) over this phase's latents, G as it was
        G = _float64_copy(recorded.G, e["G"])
        with torch.no_grad():
            w = G.mapping(e["z"].double(), None)[:, 0]
        expected = beta * e["w_avg"].double() + (1 - beta) * w.mean(dim=0)
        torch.testing.assert_close(e["w_avg_after"].double(), expected, rtol=1e-5, atol=1e-7)
        assert not torch.equal(e["w_avg_after"], e["w_avg"])
