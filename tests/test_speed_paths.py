"""The optimized paths of issue 8 compute what the plain ones do, so a speed-up cannot change results.

Covered: the one-pass FIR resampling against a literal upfirdn2d; in-place (no-grad) epilogues against
the autograd path; channels-last G, D and a whole training iteration against contiguous; grouped
(fused) against activation-scaled modulated convolution; ``torch.compile`` and its eager fallback; bf16
within a stated tolerance; the FLOP counter on small tensors; the benchmark's new report fields.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from src.benchmark.harness import RandomImages
from src.modules.stylegan2.discriminator import Discriminator
from src.modules.stylegan2.generator import Generator
from src.modules.stylegan2.module import StyleGAN2
from src.nn.layers import bias_act, downsample2d, make_fir, upfirdn2d, upsample2d
from src.profiling.measure import FlopCount, PhaseRecorder
from src.tools import benchmark
from src.utils.malloc import keep_freed_cpu_memory
from tests.conftest import TINY_MODULE

CL = torch.channels_last


def literal_upfirdn2d(x, taps, up, down, pad, gain):
    """upfirdn2d by its definition: zero insertion, padding (negative crops), a true 2-D convolution
    with ``gain * outer(taps, taps)`` written as a sum of shifted copies, then decimation."""
    n, c, h, w = x.shape
    z = torch.zeros(n, c, h * up, w * up, dtype=torch.float64)
    z[:, :, ::up, ::up] = x.double()
    px0, px1, py0, py1 = pad
    z = F.pad(z, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    z = z[:, :, max(-py0, 0) : z.shape[2] - max(-py1, 0), max(-px0, 0) : z.shape[3] - max(-px1, 0)]
    k = len(taps)
    f = torch.outer(torch.tensor(taps, dtype=torch.float64), torch.tensor(taps, dtype=torch.float64)) * gain
    oh, ow = z.shape[2] - k + 1, z.shape[3] - k + 1
    out = torch.zeros(n, c, oh, ow, dtype=torch.float64)
    for i in range(k):
        for j in range(k):  # convolution flips the kernel
            out += f[k - 1 - i, k - 1 - j] * z[:, :, i : i + oh, j : j + ow]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize(
    "up,down,pad,gain",
    [
        (1, 1, (1, 1, 1, 1), 1.0),
        (2, 1, (2, 1, 2, 1), 4.0),
        (1, 2, (1, 1, 1, 1), 1.0),
        (1, 2, (2, 2, 2, 2), 1.0),
        (1, 1, (2, 0, -1, 1), 2.0),  # asymmetric, with a crop
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_upfirdn2d_matches_its_definition(up, down, pad, gain, channels_last):
    x = torch.randn(2, 3, 7, 9)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    taps = [1.0, 3.0, 3.0, 1.0]
    got = upfirdn2d(x, make_fir(taps), up=up, down=down, padding=pad, gain=gain)
    want = literal_upfirdn2d(x, [t / 8 for t in taps], up, down, pad, gain)
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)
    if channels_last and got.shape[1] > 1:
        assert got.is_contiguous(memory_format=CL)


def test_resampling_keeps_the_mean_and_the_size():
    x = torch.full((1, 2, 8, 8), 3.0)
    fir = make_fir()
    up, down = upsample2d(x, fir), downsample2d(x, fir)
    assert up.shape[-2:] == (16, 16) and down.shape[-2:] == (4, 4)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.tensor(3.0)) and torch.allclose(
        down[..., 1:-1, 1:-1], torch.tensor(3.0)
    )


@pytest.mark.parametrize("act,gain,clamp", [("lrelu", 1.0, None), ("lrelu", 0.5, 0.3), ("linear", 2.0, None)])
def test_inplace_bias_act_equals_the_autograd_form(act, gain, clamp):
    x, b = torch.randn(3, 5, 4, 4), torch.randn(5)
    want = bias_act(x, b, act, gain=gain, clamp=clamp)
    y = x.clone()
    got = bias_act(y, b, act, gain=gain, clamp=clamp, inplace=True)
    assert got.data_ptr() == y.data_ptr()  # no new memory
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


def _tiny_g(**kw):
    torch.manual_seed(0)
    g = Generator(z_dim=16, w_dim=16, resolution=(16, 32), channel_base=256, channel_max=32, map_depth=2, **kw)
    with torch.no_grad():  # noise strengths and biases start at 0; make them count
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
            elif name.endswith(".bias") and "mapping" not in name:
                p.copy_(torch.randn_like(p))
    return g


def test_generator_no_grad_and_autograd_paths_agree():
    """Inference overwrites its own intermediates in place; the images equal the autograd forward."""
    g = _tiny_g()
    z = torch.randn(3, 16)
    with_grad = g(z, noise_mode="const")
    with torch.no_grad():
        no_grad = g(z, noise_mode="const")
    with torch.inference_mode():
        inference = g(z, noise_mode="const")
    torch.testing.assert_close(no_grad, with_grad.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(inference, with_grad.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fused", [False, True])
def test_generator_channels_last_and_fused_forms_agree(fused):
    g = _tiny_g()
    z = torch.randn(3, 16)
    want = g(z, noise_mode="const")
    g_cl = copy.deepcopy(g).to(memory_format=CL)
    got = g_cl(z, noise_mode="const", fused=fused)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    # Gradients agree too, in norm: a pre-activation within float rounding of 0 may take the other
    # leaky-ReLU slope in the other layout, which moves single entries (the same happens with fp64).
    for name in ("synthesis.blocks.1.conv0.weight", "synthesis.blocks.0.const", "mapping.layers.0.weight"):
        (gw,) = torch.autograd.grad(want.square().sum(), dict(g.named_parameters())[name], retain_graph=True)
        (gc,) = torch.autograd.grad(got.square().sum(), dict(g_cl.named_parameters())[name], retain_graph=True)
        assert (gc - gw).norm() < 1e-3 * gw.norm(), name


def test_discriminator_channels_last_agrees_with_r1_gradients():
    torch.manual_seed(0)
    d = Discriminator(resolution=(16, 16), channel_base=256, channel_max=32, mbstd_group=2)
    d_cl = copy.deepcopy(d).to(memory_format=CL)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    x_cl = x.detach().contiguous(memory_format=CL).requires_grad_(True)
    a, b = d(x), d_cl(x_cl)
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    (ga,) = torch.autograd.grad(a.sum(), x, create_graph=True)
    (gb,) = torch.autograd.grad(b.sum(), x_cl, create_graph=True)
    torch.testing.assert_close(gb, ga, atol=1e-5, rtol=1e-5)
    (wa,) = torch.autograd.grad(ga.square().sum(), d.blocks[0].conv1.weight)
    (wb,) = torch.autograd.grad(gb.square().sum(), d_cl.blocks[0].conv1.weight)
    torch.testing.assert_close(wb, wa, atol=1e-4, rtol=1e-4)


def _fit(perf: dict, iterations: int = 2, precision: str = "32-true") -> StyleGAN2:
    """A tiny StyleGAN2 fit with R1 and path length both active. Adam's eps is 1e-3: with 1e-8, a
    gradient entry at float-rounding level (1e-9 in one layout, -1e-9 in the other) becomes a full
    +-lr step, so two layouts of the same computation would differ by ~lr for reasons unrelated to
    the layouts (the DDP parity test does the same)."""
    import pytorch_lightning as pl

    from src.callbacks.limits import bare_trainer
    from src.datamodules.image_datamodule import ImageDataModule

    torch.manual_seed(0)
    model = StyleGAN2(
        **TINY_MODULE,
        use_noise=False,
        loss=dict(r1_interval=2, pl_interval=2),
        optim=dict(eps=1e-3),
        check_finite_every=0,
        perf=perf,
    )
    data = RandomImages(8, 3, (16, 16))
    dm = ImageDataModule(data, batch_size=4, resolution=[16, 16])
    pl.seed_everything(0)
    bare_trainer(iterations, precision=precision).fit(model, datamodule=dm)
    return model


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_channels_last_training_matches_contiguous_training():
    """Two iterations with both regularizers, channels-last against contiguous: the same weights."""
    plain = _fit({})
    fast = _fit({"channels_last": True})
    assert fast.D.blocks[0].conv0.weight.is_contiguous(memory_format=CL)
    assert _max_diff(plain.G, fast.G) < 1e-5 and _max_diff(plain.D, fast.D) < 1e-5


def test_compile_falls_back_to_eager_when_compilation_fails(monkeypatch):
    from torch._dynamo.exc import TorchDynamoException  # BackendCompilerFailed's base

    class Broken:
        def __init__(self, module, *a, **k):
            self.module = module

        def __call__(self, *args, **kwargs):
            raise TorchDynamoException("no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda module, *a, **k: Broken(module))
    model = StyleGAN2(**TINY_MODULE, perf={"compile": True})
    x = torch.randn(2, 3, 16, 16)
    with pytest.warns(RuntimeWarning, match="torch.compile failed for Discriminator.*no C"):
        out = model.compiled(model.D)(x)
    torch.testing.assert_close(out, model.D(x))
    assert model.compiled(model.D) is model.compiled(model.D)  # one wrapper per network
    assert StyleGAN2(resolution=16, channel_base=128, channel_max=16).compiled(model.D) is model.D  # off


def test_unknown_perf_key_is_named():
    with pytest.raises(ValueError, match="model.perf.channel_last"):
        StyleGAN2(resolution=16, channel_base=128, channel_max=16, perf={"channel_last": True})


@pytest.mark.slow
def test_compiled_generator_and_training_match_eager():
    """``torch.compile`` (inductor's C++ backend) gives the eager results; needs a C++ compiler."""
    g = _tiny_g()
    z = torch.randn(2, 16)
    with torch.no_grad():
        want = g(z, noise_mode="const")
        got = torch.compile(g)(z, noise_mode="const")
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    plain = _fit({}, iterations=2)
    fast = _fit({"compile": True}, iterations=2)
    assert not any(w.failed for w in fast._compiled.values())
    assert _max_diff(plain.G, fast.G) < 1e-4 and _max_diff(plain.D, fast.D) < 1e-4


def test_bf16_generator_is_within_its_stated_tolerance():
    """bf16 keeps 8 mantissa bits: the image differs from fp32 by < 5% of its scale."""
    g = _tiny_g()
    z = torch.randn(3, 16)
    with torch.no_grad():
        want = g(z, noise_mode="const")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = g(z, noise_mode="const").float()
    assert (got - want).abs().max() < 0.05 * want.abs().max()


def test_flop_count_on_small_tensors():
    x, w = torch.randn(2, 4, 8, 8, requires_grad=True), torch.randn(6, 4, 3, 3, requires_grad=True)
    fwd = 2 * 2 * 6 * 4 * 9 * 8 * 8  # 2 * N * O * I * k * k * H * W
    for mode in (torch.no_grad, torch.inference_mode):
        c = FlopCount()
        with mode(), c:
            F.conv2d(x, w, padding=1)
            F.linear(torch.randn(3, 5), torch.randn(7, 5))
        assert c.total == fwd + 2 * 3 * 5 * 7
    c = FlopCount()
    with c:
        F.conv2d(x, w, padding=1).sum().backward()
    assert c.total == 3 * fwd  # forward, grad input, grad weight


def test_phase_recorder_times_and_counts():
    rec = PhaseRecorder()
    rec.counting = True
    with rec("A"):
        torch.randn(4, 8) @ torch.randn(8, 2)
    rec.counting, rec.timing = False, True
    for _ in range(3):
        with rec("A"):
            pass
    assert rec.flops == {"A": 2 * 4 * 8 * 2} and rec.calls["A"] == 3 and rec.mean_seconds()["A"] >= 0


def test_malloc_setting_applies_on_glibc():
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert keep_freed_cpu_memory() is True and keep_freed_cpu_memory() is True


@pytest.mark.parametrize("flag,applied", [([], True), (["system_malloc=true"], False)])
def test_benchmark_applies_the_allocator_setting_unless_told_not_to(monkeypatch, flag, applied):
    calls = []
    monkeypatch.setattr(benchmark, "keep_freed_cpu_memory", lambda: calls.append(1) or True)
    out = benchmark.main(["colorspace", "space=rgb", "resolution=8", "batch=1", "repeats=1", *flag])
    assert out["what"] == "colorspace" and (calls == [1]) is applied


def test_training_applies_the_allocator_setting_unless_told_not_to(tiny_cfg, monkeypatch):
    import src.train

    for setting, applied in ((True, True), (False, False)):
        calls = []
        monkeypatch.setattr(src.train, "keep_freed_cpu_memory", lambda: calls.append(1) or True)
        src.train.train(
            tiny_cfg(f"cpu_malloc_cache={str(setting).lower()}", "trainer.max_steps=1", run_name=f"malloc_{setting}")
        )
        assert (calls == [1]) is applied


def test_benchmark_reports_phases_and_inference():
    tiny = ["channel_base=128", "channel_max=16", "z_dim=16", "map_depth=1", "system_malloc=true"]
    out = benchmark.main(["stylegan2", *tiny, "resolution=16", "batch=2", "steps=1", "warmup=1"])
    assert set(out["phases"]) == {"Gmain", "Greg", "Dmain", "Dreg"}
    assert out["phases"]["Greg"]["every"] == 4 and out["phases"]["Dreg"]["every"] == 16
    assert all(row["gflop"] > 0 and 0 < row["peak_fraction"] for row in out["phases"].values())
    assert out["sec_per_iteration_from_phases"] > 0 and out["gflop_per_iteration"] > 0
    inf = benchmark.main(["inference", *tiny, "resolution=16", "batch=2", "steps=2", "channels_last=true"])
    assert inf["what"] == "inference" and inf["channels_last"] and inf["sec_per_batch"] > 0
    assert inf["gflop_per_image"] > 0 and inf["params_G"] > 0
    with pytest.raises(FileNotFoundError, match="networks_stylegan2.py"):
        benchmark.main(["inference", *tiny, "resolution=16", "batch=2", "steps=1", "nvidia=/nonexistent/stylegan3"])


# A stand-in for a stylegan3 checkout: records how the harness builds and runs NVIDIA's networks.
_STUB_NETWORKS = """
import torch
BUILT = []
class Generator(torch.nn.Module):
    def __init__(self, z_dim, w_dim, c_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs):
        super().__init__()
        BUILT.append(dict(synthesis_kwargs))
        self.z_dim, self.layer = z_dim, torch.nn.Linear(z_dim, 3)
    def forward(self, z, c, **kwargs):
        BUILT.append({"forward_training": self.training})
        return self.layer(z)
class Discriminator(torch.nn.Module):
    def __init__(self, c_dim, img_resolution, img_channels, **kwargs):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)
"""
_STUB_LOSS = """
from training import networks_stylegan2
class StyleGAN2Loss:
    def __init__(self, device, G, D, **kwargs):
        self.G, self.D = G, D
    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        networks_stylegan2.BUILT.append({"phase": phase, "G_training": self.G.training})
        (self.D.layer(self.G(gen_z, gen_c)).sum() * gain).backward()
"""


def test_nvidia_reference_is_built_as_their_training_builds_it(tmp_path, monkeypatch):
    """NVIDIA trains cfg=stylegan2 with fused_modconv_default='inference_only' (stylegan3 train.py): plain
    convolutions in training, the grouped one in eval mode. The side-by-side must build their G so."""
    import sys
    import types

    from src.profiling import nvidia_reference

    training = tmp_path / "stylegan3" / "training"
    training.mkdir(parents=True)
    (training / "__init__.py").write_text("")
    (training / "networks_stylegan2.py").write_text(_STUB_NETWORKS)
    (training / "loss.py").write_text(_STUB_LOSS)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [m for m in sys.modules if m == "training" or m.startswith("training.")]:
        monkeypatch.delitem(sys.modules, name)
    args = types.SimpleNamespace(
        channel_base=64, channel_max=8, z_dim=4, map_depth=1, batch=2, warmup=1, precision="32-true"
    )
    data = types.SimpleNamespace(resolution=(8, 8), images=torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    try:
        nvidia_reference.time_training(str(tmp_path / "stylegan3"), data, args, torch.device("cpu"), 1, {})
        built = sys.modules["training.networks_stylegan2"].BUILT
        assert built[0]["fused_modconv_default"] == "inference_only"
        assert {e["phase"] for e in built if "phase" in e} == {"Gmain", "Greg", "Dmain", "Dreg"}
        assert all(e["G_training"] for e in built if "phase" in e)  # their G runs in training mode
    finally:
        for name in [m for m in sys.modules if m == "training" or m.startswith("training.")]:
            sys.modules.pop(name, None)
