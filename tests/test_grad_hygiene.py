"""Gradient hygiene as NVlabs/stylegan3 training/training_loop.py: before every optimizer step, NaN
gradients become 0 and +-Inf become +-1e5 (``GANModule.step`` / ``on_before_optimizer_step``).

A hook on one G and one D parameter puts an Inf, a NaN and a -Inf into their gradients in one
iteration; with the cleaning the optimizer sees finite gradients, the weights stay finite and
training goes on; without it (the cleaning patched out) the weights turn NaN. Under fp16 loss
scaling, the GradScaler must still see the overflow: it skips that step and backs off its scale.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import src.modules.base as base
from src.modules.base import GANModule, sanitize_grads
from src.modules.stylegan2.module import StyleGAN2
from tests.test_training_step import fit, tiny

BAD_ITERATION = 1


def test_sanitize_grads_replaces_only_non_finite_values():
    a = torch.nn.Parameter(torch.zeros(6))
    b = torch.nn.Parameter(torch.zeros(2, 3, 2, 2).contiguous(memory_format=torch.channels_last))
    c = torch.nn.Parameter(torch.zeros(3, dtype=torch.float16))
    unused = torch.nn.Parameter(torch.zeros(2))
    a.grad = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30, -2.5, 0.0])
    b.grad = torch.randn(2, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    b.grad[1, 2, 0, 1] = float("inf")
    c.grad = torch.tensor([float("inf"), float("nan"), 3.0], dtype=torch.float16)
    b_expected = b.grad.clone()
    b_expected[1, 2, 0, 1] = 1e5
    grads = [a.grad, b.grad, c.grad]
    opt = torch.optim.SGD([{"params": [a, unused]}, {"params": [b, c]}], lr=1.0)
    sanitize_grads(opt)
    assert all(p.grad is g for p, g in zip((a, b, c), grads))  # in place
    assert torch.equal(a.grad, torch.tensor([0.0, 1e5, -1e5, 1e30, -2.5, 0.0]))  # finite values untouched
    assert torch.equal(b.grad, b_expected) and b.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(c.grad, torch.tensor([65504.0, 0.0, 3.0], dtype=torch.float16))  # float16's largest
    assert unused.grad is None


def test_every_family_cleans_through_the_shared_step():
    """StyleGAN2, SEGAN and ChromaGAN all step through GANModule.step and keep its hook."""
    from src.modules.chromagan.module import ChromaGAN
    from src.modules.segan.module import SEGAN

    for cls in (StyleGAN2, SEGAN, ChromaGAN):
        assert cls.step is GANModule.step, cls
        assert cls.on_before_optimizer_step is GANModule.on_before_optimizer_step, cls


class Poisoned(StyleGAN2):
    """In iteration ``BAD_ITERATION``, Gmain and Dmain get Inf, NaN and -Inf in one weight's gradient."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.current = None
        self.seen: list[tuple[str, int, torch.Tensor]] = []  # (phase, iteration, poisoned weight's step grad)
        self.moved: dict[tuple[str, int], bool] = {}  # did the phase change its network's weights
        self.scales: dict[tuple[str, int], list[float]] = {}  # fp16 loss scales at the phase's start
        self.targets = {"Gmain": self.G.synthesis.blocks[0].const, "Dmain": next(self.D.parameters())}
        for name, p in self.targets.items():
            p.register_hook(self._poison(name))

    def _poison(self, name: str):
        def hook(grad: torch.Tensor) -> torch.Tensor:
            if self.current != name or self.iteration != BAD_ITERATION:
                return grad
            grad = grad.clone()
            flat = grad.view(-1)
            flat[0], flat[1], flat[2] = float("inf"), float("nan"), -float("inf")
            return grad

        return hook

    @contextlib.contextmanager
    def phase(self, name: str):
        net = self.G if name.startswith("G") else self.D
        before = [p.detach().clone() for p in net.parameters()]
        self.scales[(name, self.iteration)] = self.loss_scales()
        self.current = name
        try:
            yield
        finally:
            self.current = None
            self.moved[(name, self.iteration)] = any(not torch.equal(a, p) for a, p in zip(before, net.parameters()))

    def on_before_optimizer_step(self, optimizer) -> None:
        super().on_before_optimizer_step(optimizer)
        if self.current in self.targets:
            grad = self.targets[self.current].grad
            self.seen.append((self.current, self.iteration, grad.detach().view(-1)[:3].clone()))
            self.all_finite = getattr(self, "all_finite", True) and all(
                torch.isfinite(p.grad).all() for g in optimizer.param_groups for p in g["params"] if p.grad is not None
            )


def _finite(model: StyleGAN2) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


def test_injected_inf_and_nan_gradients_are_cleaned_and_training_goes_on():
    torch.manual_seed(0)
    model = fit(tiny(Poisoned, check_finite_every=1), BAD_ITERATION + 4)
    assert model.iteration == BAD_ITERATION + 4  # trained on, and every loss was finite (checked each iteration)
    poisoned = [(name, grad) for name, it, grad in model.seen if it == BAD_ITERATION]
    assert [name for name, _ in poisoned] == ["Gmain", "Dmain"]
    for _, grad in poisoned:
        assert grad.tolist() == [1e5, 0.0, -1e5]
    assert model.all_finite  # every gradient every optimizer saw
    assert _finite(model) and _finite(model.G_ema)
    assert model.moved[("Gmain", BAD_ITERATION)] and model.moved[("Dmain", BAD_ITERATION)]


def test_without_cleaning_the_weights_turn_nan(monkeypatch):
    """The same run with the cleaning patched out: Adam turns the Inf into NaN weights (so the test above
    can fail), and the non-finite loss check stops the run."""
    monkeypatch.setattr(base, "sanitize_grads", lambda optimizer: None)
    torch.manual_seed(0)
    model = tiny(Poisoned, check_finite_every=1)
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit(model, BAD_ITERATION + 4)
    assert not _finite(model.G) and not _finite(model.D)
    assert model.iteration == BAD_ITERATION + 1


def test_fp16_loss_scaling_still_skips_the_overflowed_step():
    """16-mixed: the Inf/NaN gradient is cleaned only after the GradScaler's unscale_, so the scaler still
    sees the overflow: it skips G's and D's steps of that iteration and halves their loss scales.
    (Cleaning before unscale_ would hand it finite gradients and the poisoned steps would be taken.)"""
    from pytorch_lightning.plugins.precision import MixedPrecision

    torch.manual_seed(0)
    model = tiny(Poisoned, check_finite_every=1)
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=1.0))
    fit(model, BAD_ITERATION + 2, plugins=[plugin])
    assert model.iteration == BAD_ITERATION + 2 and _finite(model) and _finite(model.G_ema)
    for name in ("Gmain", "Dmain"):
        assert model.moved[(name, BAD_ITERATION - 1)] and model.moved[(name, BAD_ITERATION + 1)]
        assert not model.moved[(name, BAD_ITERATION)], name  # skipped by the scaler
    # G's scale halves in Gmain of the bad iteration, D's in its Dmain; nothing else overflowed before
    assert model.scales[("Gmain", BAD_ITERATION)] == [1.0, 1.0]
    assert model.scales[("Dmain", BAD_ITERATION)] == [0.5, 1.0]
    assert model.scales[("Gmain", BAD_ITERATION + 1)] == [0.5, 0.5]
