"""Loss and regularizer formulas of stylegan2-ada-pytorch's loss.py on small tensors with known answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from src.modules.stylegan2 import losses


def test_logistic_losses():
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    torch.testing.assert_close(losses.g_nonsaturating(fake), F.softplus(-fake))
    torch.testing.assert_close(losses.d_logistic(real, fake), F.softplus(fake) + F.softplus(-real))
    # log(1 + e^0) = log 2 for a logit of 0
    assert losses.d_logistic(torch.zeros(1), None).item() == pytest.approx(math.log(2))


def test_r1_on_a_linear_critic():
    """D(x) = sum(a * x) has grad a everywhere: R1 = ||a||^2 per sample; quadratic D(x) = sum(x^2)/2 -> ||x||^2."""
    a = torch.randn(1, 2, 3, 3)
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    pen = losses.r1_penalty((a * x).sum(dim=[1, 2, 3]), x)
    torch.testing.assert_close(pen, a.square().sum().expand(4))
    x2 = torch.randn(4, 2, 3, 3, requires_grad=True)
    pen2 = losses.r1_penalty((x2.square() / 2).sum(dim=[1, 2, 3]), x2)
    torch.testing.assert_close(pen2, x2.detach().square().sum(dim=[1, 2, 3]))
    pen2.mean().backward()  # differentiable (double backward)
    torch.testing.assert_close(x2.grad, 2 * x2.detach() / 4)


def test_path_length_on_a_linear_generator():
    """img = ws @ A (per sample): grad_ws sum(img * y) = y @ A^T, so the length is known in closed form."""
    torch.manual_seed(0)
    n, num_ws, w_dim, hw = 3, 4, 5, 6
    A = torch.randn(num_ws * w_dim, hw * hw)
    ws = torch.randn(n, num_ws, w_dim, requires_grad=True)
    img = (ws.reshape(n, -1) @ A).reshape(n, 1, hw, hw)
    y = losses.path_length_noise(img)
    assert y.shape == img.shape
    got = losses.path_lengths(img, ws, y)
    g = (y.reshape(n, -1) @ A.t()).reshape(n, num_ws, w_dim)
    torch.testing.assert_close(got, g.square().sum(2).mean(1).sqrt())


def test_path_length_noise_scale():
    torch.manual_seed(0)
    y = losses.path_length_noise(torch.zeros(64, 3, 16, 32))
    assert y.std().item() == pytest.approx(1 / math.sqrt(16 * 32), rel=0.05)


def test_path_length_penalty_uses_updated_mean():
    lengths = torch.tensor([1.0, 3.0])
    pen, new_mean = losses.path_length_penalty(lengths, torch.tensor(0.0), decay=0.01)
    assert new_mean.item() == pytest.approx(0.02)  # a + 0.01 * (mean(len) - a)
    torch.testing.assert_close(pen, (lengths - 0.02).square())


def test_lazy_regularization_adam_params():
    # lazy regularization, c = k/(k+1): worked values
    lr, betas = losses.lazy_adam_params(0.002, (0.0, 0.99), 4)
    assert lr == pytest.approx(0.0016) and betas[0] == 0.0 and betas[1] == pytest.approx(0.99**0.8)
    assert betas[1] == pytest.approx(0.99199, abs=1e-5)
    lr, betas = losses.lazy_adam_params(0.002, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.002 * 16 / 17) and betas[1] == pytest.approx(0.99059, abs=1e-5)
    assert losses.lazy_adam_params(0.0025, (0.0, 0.99), 4)[0] == pytest.approx(0.002)
    assert losses.lazy_adam_params(0.0025, (0.0, 0.99), None) == (0.0025, (0.0, 0.99))


def test_ema_beta():
    # half-life of ema_kimg thousand images: after that many images the old weights count half
    b = losses.ema_beta(batch_size=32, ema_kimg=10, cur_nimg=10**7)
    assert b == pytest.approx(0.5 ** (32 / 10_000))
    assert b ** (10_000 / 32) == pytest.approx(0.5)
    # ramp-up: ema_nimg = min(10000, cur_nimg * 0.05)
    assert losses.ema_beta(32, 10, cur_nimg=1000, rampup=0.05) == pytest.approx(0.5 ** (32 / 50))
    assert losses.ema_beta(32, 10, cur_nimg=0, rampup=0.05) == pytest.approx(0.0)
    assert losses.ema_beta(32, 10, cur_nimg=10**6, rampup=0.05) == pytest.approx(0.5 ** (32 / 10_000))
