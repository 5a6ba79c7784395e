"""``benchmark.py stylegan3`` (src/benchmark/subjects/stylegan3.py) and NVIDIA's side of it
(src/profiling/nvidia_stylegan3.py).

The subject runs configs T and R at a tiny size and reports every phase, the fraction of peak and G(z);
its module settings are the presets' (NVIDIA's train.py values). NVIDIA's side is checked against a
stand-in checkout that records how it is built and run (the StyleGAN2 side is tested the same way in
tests/test_speed_paths.py); the run against a real NVlabs/stylegan3 checkout is marked slow and skipped
unless ``GAMUT_NVIDIA_STYLEGAN3`` names one (a clone of NVlabs/stylegan3 outside the repository).
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from src.benchmark.harness import shapes_images
from src.benchmark.subjects import stylegan3 as subject
from src.profiling import nvidia_stylegan3
from src.profiling.measure import LossHistory
from src.tools import benchmark
from tests.conftest import CONF

TINY = ["channel_base=64", "channel_max=8", "z_dim=8", "system_malloc=true", "steps=1", "warmup=1"]


@pytest.fixture
def fixed_peak(monkeypatch):
    """A fixed peak instead of the 2048-square matmuls each report measures (seconds on 2 busy cores)."""
    from src.benchmark import report
    from src.benchmark.subjects import inference
    from src.profiling import nvidia_reference

    for module in (report, inference, nvidia_reference):
        monkeypatch.setattr(module, "peak_gflops", lambda device, precision: (100.0, "fixed in the test"))


@pytest.fixture
def one_timed_iteration(monkeypatch, fixed_peak):
    """The subject's fit with 1 timed iteration (not the 16 that amortize R1) and R1 in every iteration,
    so a test still sees every phase timed; the 16-iteration window is the StyleGAN2 subject's code,
    tested in tests/test_speed_paths.py, and runs whole in the slow test at the end."""
    from src.benchmark.subjects import stylegan2

    fit, kwargs = stylegan2.fit_timed, subject.module_kwargs
    monkeypatch.setattr(stylegan2, "fit_timed", lambda model, dm, args, iterations: fit(model, dm, args, 1))

    def r1_every_iteration(args, res):
        out = kwargs(args, res)
        return out | dict(loss=out["loss"] | dict(r1_interval=1))

    monkeypatch.setattr(subject, "module_kwargs", r1_every_iteration)


@pytest.mark.parametrize(
    "cfg,res",
    [
        ("t", "resolution=[16,32]"),
        # R differs only in the module's arguments (test_module_settings_are_the_presets) and its networks
        # (tests/test_stylegan3_networks.py); the run itself takes 10-20 s of FLOP counting on 2 busy cores
        pytest.param("r", "resolution=16", marks=pytest.mark.slow),
    ],
)
def test_subject_reports_every_phase_and_g_of_z(cfg, res, one_timed_iteration):
    out = benchmark.main(["stylegan3", f"cfg={cfg}", res, "batch=2", "infer_steps=1", *TINY])
    assert out["cfg"] == cfg and out["map_depth"] == 2 and out["timed_iterations"] == 1
    assert set(out["phases"]) == {"Gmain", "Dmain", "Dreg"}  # no path length (pl_weight 0)
    assert all(row["gflop"] > 0 and 0 < row["peak_fraction"] for row in out["phases"].values())
    assert out["gflop_per_iteration"] > 0 and out["peak_memory_mb"] > 0 and out["peak_gflops"] > 0
    inf = out["inference"]
    assert inf["sec_per_batch"] > 0 and inf["timed_batches"] == 1 and inf["gflop_per_image"] > 0
    assert inf["params_G"] == out["params_G"] and inf["resolution"] == out["resolution"]
    widths = (128, 16) if cfg == "r" else (64, 8)  # R doubles G's widths, not D's
    assert (out["g_channel_base"], out["g_channel_max"]) == widths
    assert (inf["g_channel_base"], inf["g_channel_max"]) == widths
    assert out["conv_kernel"] == (1 if cfg == "r" else 3) and out["blur_sigma"] == (10.0 if cfg == "r" else 0.0)


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_module_settings_are_the_presets(cfg):
    """At NVIDIA's widths and batch 32 the subject builds what src/conf/preset/stylegan3-<cfg>.yaml sets."""
    preset = OmegaConf.load(Path(CONF) / "preset" / "stylegan3-t.yaml").model
    if cfg == "r":
        preset = OmegaConf.merge(preset, OmegaConf.load(Path(CONF) / "preset" / "stylegan3-r.yaml").model)
    args = benchmark.parse_args(["stylegan3", f"cfg={cfg}", "batch=32"])
    kw = subject.module_kwargs(args, (32, 32))
    for key in ("map_depth", "channel_base", "channel_max", "conv_kernel", "use_radial_filters"):
        assert kw[key] == preset[key], key
    assert kw["g_channel_base"] == (preset.g_channel_base or preset.channel_base)
    assert kw["g_channel_max"] == (preset.g_channel_max or preset.channel_max)
    assert kw["optim"] == dict(preset.optim) and kw["ema"] == dict(preset.ema)
    assert kw["loss"]["pl_weight"] == preset.loss.pl_weight and kw["loss"]["style_mixing_prob"] == 0
    assert (kw["blur"] or dict(sigma=0.0, fade_kimg=0.0)) == dict(preset.blur)
    assert kw["magnitude_ema_beta"] is None  # the module's 0.5 ** (batch / 20000)


def test_nvidia_side_needs_a_square_size_before_anything_runs():
    with pytest.raises(SystemExit, match="square"):
        benchmark.main(["stylegan3", "resolution=[16,32]", "nvidia=/nonexistent/stylegan3"])


# A stand-in for a stylegan3 checkout: records how the harness builds and runs NVIDIA's networks.
_STUB_G = """
import torch
from torch_utils.ops import filtered_lrelu
BUILT = []
class Generator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs):
        super().__init__()
        BUILT.append(dict(synthesis_kwargs, mapping_kwargs=mapping_kwargs, z_dim=z_dim, w_dim=w_dim))
        self.z_dim, self.layer = z_dim, torch.nn.Linear(z_dim, 3)
    def forward(self, z, c, **kwargs):
        return filtered_lrelu.filtered_lrelu(self.layer(z))
"""
_STUB_D = """
import torch
BUILT = []
class Discriminator(torch.nn.Module):
    def __init__(self, c_dim, img_resolution, img_channels, **kwargs):
        super().__init__()
        BUILT.append(kwargs)
        self.layer = torch.nn.Linear(3, 1)
"""
_STUB_LOSS = """
from torch_utils import training_stats
from training import networks_stylegan2
class StyleGAN2Loss:
    def __init__(self, device, G, D, augment_pipe=None, **kwargs):
        self.G, self.D = G, D
        networks_stylegan2.BUILT.append({"loss": kwargs, "augment_pipe": augment_pipe})
    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        networks_stylegan2.BUILT.append({"phase": phase, "gain": gain, "G_training": self.G.training})
        (self.D.layer(self.G(gen_z, gen_c)).sum() * gain).backward()
        name = {"Gboth": "Loss/G/loss", "Dmain": "Loss/D/loss", "Dreg": "Loss/D/reg"}[phase]
        training_stats.report(name, float(len(networks_stylegan2.BUILT)))  # a value that grows
        training_stats.report("Loss/scores/fake", -1.0)  # not a loss the summary keeps
"""
_STUB_STATS = """
REPORTED = []
def report(name, value):
    REPORTED.append(name)
    return value
"""
_STUB_AUGMENT = """
import torch
class AugmentPipe(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs
        self.register_buffer("p", torch.ones([]))
"""
_STUB_FILTERED_LRELU = """
def _init():
    raise RuntimeError("no plugin in the stand-in")
def _filtered_lrelu_ref(x):
    return x
def filtered_lrelu(x, impl="cuda"):
    return _filtered_lrelu_ref(x)
"""
_STUB_OP = """
def _init():
    raise RuntimeError("no plugin in the stand-in")
def {name}(x, impl="cuda"):
    return impl
"""


@pytest.fixture
def stub_checkout(tmp_path, monkeypatch):
    root = tmp_path / "stylegan3"
    files = {
        "training/__init__.py": "",
        "training/networks_stylegan3.py": _STUB_G,
        "training/networks_stylegan2.py": _STUB_D,
        "training/loss.py": _STUB_LOSS,
        "training/augment.py": _STUB_AUGMENT,
        "torch_utils/__init__.py": "",
        "torch_utils/ops/__init__.py": "",
        "torch_utils/training_stats.py": _STUB_STATS,
        "torch_utils/ops/filtered_lrelu.py": _STUB_FILTERED_LRELU,
        "torch_utils/ops/bias_act.py": _STUB_OP.format(name="bias_act"),
        "torch_utils/ops/upfirdn2d.py": _STUB_OP.format(name="upfirdn2d"),
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)

    def theirs() -> list[str]:
        return [m for m in sys.modules if m.split(".")[0] in ("training", "torch_utils")]

    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in theirs():
        monkeypatch.delitem(sys.modules, name)
    yield root
    for name in theirs():
        sys.modules.pop(name, None)


def _args(**over) -> types.SimpleNamespace:
    base = dict(
        channel_base=64,
        channel_max=8,
        z_dim=4,
        map_depth=2,
        batch=2,
        warmup=1,
        precision="32-true",
        augment="none",
        augment_p=0.5,
        augment_pipeline="bgc",
        gamma=8.2,
    )
    return types.SimpleNamespace(**(base | over))


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_nvidia_side_is_built_as_their_train_py_builds_it(stub_checkout, fixed_peak, cfg):
    """train.py --cfg=stylegan3-t/-r: magnitude_ema_beta = 0.5 ** (batch / 20e3), 2 mapping layers; R: 1x1
    convolutions, G's widths doubled (D's not), radial filters, blur sigma 10 over batch * 200 / 32 kimg;
    pl_weight 0, style mixing 0; --fp32 on CPU. The loop runs Gboth (G_reg_interval None) and Dmain every
    iteration, Dreg every 16, in that order, each with gain = its interval."""
    data = types.SimpleNamespace(resolution=(8, 8), images=torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    out = nvidia_stylegan3.time_training(str(stub_checkout), cfg, data, _args(), torch.device("cpu"), 16, {})
    g = sys.modules["training.networks_stylegan3"].BUILT[0]
    recorded = sys.modules["training.networks_stylegan2"].BUILT
    d, loss = recorded[0], recorded[1]["loss"]
    r = cfg == "r"
    assert g["magnitude_ema_beta"] == 0.5 ** (2 / 20e3) and g["mapping_kwargs"] == {"num_layers": 2}
    assert (g["channel_base"], g["channel_max"]) == ((128, 16) if r else (64, 8))
    assert g["conv_kernel"] == (1 if r else 3) and g["use_radial_filters"] is r
    assert g["num_fp16_res"] == 0 and g["conv_clamp"] is None
    assert (d["channel_base"], d["channel_max"]) == (64, 8) and d["epilogue_kwargs"] == {"mbstd_group_size": 2}
    assert d["num_fp16_res"] == 0 and d["conv_clamp"] is None
    assert loss["pl_weight"] == 0 and loss["style_mixing_prob"] == 0 and loss["r1_gamma"] == 8.2
    if r:
        assert loss["blur_init_sigma"] == 10 and loss["blur_fade_kimg"] == 2 * 200 / 32
    else:
        assert "blur_init_sigma" not in loss
    assert recorded[1]["augment_pipe"] is None
    calls = [(e["phase"], e["gain"]) for e in recorded if "phase" in e]
    per_iteration = [("Gboth", 1), ("Dmain", 1)]
    assert calls == per_iteration + [("Dreg", 16)] + per_iteration * 16 + [("Dreg", 16)]  # warm-up, then 16
    assert all(e["G_training"] for e in recorded if "phase" in e)
    assert set(out["phases"]) == {"Gmain", "Dmain", "Dreg"} and out["model"] == f"nvidia stylegan3-{cfg}"
    assert out["ops"]["filtered_lrelu"] == "reference (CPU tensors): 3 of 3 calls in _filtered_lrelu_ref"


def test_nvidia_side_records_their_losses_and_measures_their_g_ema(stub_checkout, fixed_peak):
    """Their loss's training_stats.report still sees every report; Loss/G/loss, Loss/D/loss and
    Loss/D/reg also land in the summary under gamut's names (the scores do not); ``quality`` gets their
    G_ema, called as gen_images.py calls it."""
    data = types.SimpleNamespace(resolution=(8, 8), images=torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    seen = []

    def quality(G):
        seen.append(G(torch.zeros(3, 4)).shape)
        return {"SWDx1e3_avg": 1.0}

    out = nvidia_stylegan3.time_training(str(stub_checkout), "t", data, _args(), torch.device("cpu"), 16, {}, quality)
    stats = sys.modules["torch_utils.training_stats"]
    assert stats.REPORTED.count("Loss/G/loss") == 17 and stats.REPORTED.count("Loss/scores/fake") == 36
    assert stats.report.__module__ == "torch_utils.training_stats"  # put back after the run
    losses = out["losses"]
    assert losses["iterations"] == 17 and set(losses) == {"iterations", "windows", "Loss/G", "Loss/D", "Loss/r1"}
    assert losses["Loss/G"] == sorted(losses["Loss/G"]) and losses["Loss/G"][0] < losses["Loss/G"][-1]
    assert losses["Loss/r1"][0] is not None and losses["Loss/r1"][1] is None  # Dreg in iterations 0 and 16
    assert out["quality"] == {"SWDx1e3_avg": 1.0} and seen == [torch.Size([3, 3])]


def test_loss_history_means_over_equal_windows():
    history = LossHistory()
    for i in range(8):
        history.start()
        history.add("Loss/G", torch.tensor([float(i), float(i) + 2]))  # a tensor: its mean, i + 1
        if i % 4 == 0:
            history.add("Loss/r1", i)
    out = history.summary(windows=4)
    assert out["windows"] == [[0, 2], [2, 4], [4, 6], [6, 8]] and out["iterations"] == 8
    assert out["Loss/G"] == [1.5, 3.5, 5.5, 7.5] and out["Loss/r1"] == [0.0, None, 4.0, None]


def test_side_by_side_training_on_shapes_reports_losses_and_swd(one_timed_iteration):
    """data=shapes trains on the easy shapes (white shapes on black), reports gamut's losses like NVIDIA's
    and, with quality=N, the SWD of G_ema's images against the first N training images."""
    out = benchmark.main(
        [
            "stylegan3",
            "resolution=16",
            "batch=2",
            "infer_steps=0",
            "data=shapes",
            "images=6",
            "quality=4",
            "gamma=0.5",
            *TINY,
        ]
    )
    assert out["data"] == "shapes" and out["r1_gamma"] == 0.5
    assert {"Loss/G", "Loss/D", "Loss/r1"} <= set(out["losses"]) and out["losses"]["iterations"] == 2
    q = out["quality"]
    assert q["metric"] == "swd" and q["images"] == 4 and set(q) >= {"SWDx1e3_16", "SWDx1e3_avg"}
    assert q["SWDx1e3_avg"] > 0
    shapes = shapes_images(6, (16, 16)).images
    assert shapes.dtype == torch.uint8 and shapes.shape == (6, 3, 16, 16)
    assert shapes.float().mean() < 128 and shapes.max() == 255  # mostly black, some white


@pytest.mark.parametrize("words", [["quality=8", "images=4"], ["quality=-1"]])
def test_quality_needs_as_many_training_images(words):
    with pytest.raises(SystemExit, match="quality"):
        benchmark.main(["stylegan3", "resolution=16", "data=shapes", *words])


def test_nvidia_side_uses_their_augment_pipe_with_bgc(stub_checkout, fixed_peak):
    data = types.SimpleNamespace(resolution=(8, 8), images=torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    args = _args(augment="ada", augment_p=0.3)
    out = nvidia_stylegan3.time_training(str(stub_checkout), "t", data, args, torch.device("cpu"), 1, {})
    pipe = sys.modules["training.networks_stylegan2"].BUILT[1]["augment_pipe"]
    assert set(pipe.kwargs) == set(nvidia_stylegan3.BGC) and float(pipe.p) == pytest.approx(0.3)
    assert out["augment"].startswith("their AugmentPipe")
    with pytest.raises(ValueError, match="bgc"):
        nvidia_stylegan3.time_training(
            str(stub_checkout), "t", data, _args(augment="diffaugment"), torch.device("cpu"), 1, {}
        )


def test_on_cuda_a_plugin_that_does_not_build_falls_back_to_their_reference(stub_checkout):
    nv = nvidia_stylegan3.load(stub_checkout)
    paths = nvidia_stylegan3.choose_ops(nv, torch.device("cuda"))  # only asks the (stand-in) plugins
    assert all(p.startswith("reference (plugin did not build") for p in paths.values())
    assert nv.ops["upfirdn2d"].upfirdn2d(0, impl="cuda") == "ref"  # whatever impl the caller passes
    assert nv.ops["bias_act"].bias_act(0) == "ref"


REFERENCE = Path(os.environ.get("GAMUT_NVIDIA_STYLEGAN3", "/nonexistent"))


@pytest.mark.slow
@pytest.mark.skipif(not (REFERENCE / "training" / "networks_stylegan3.py").is_file(), reason="no stylegan3 checkout")
def test_against_a_real_checkout_both_codes_train_the_same_network():
    out = benchmark.main(
        ["stylegan3", "cfg=r", "resolution=16", "batch=2", "infer_steps=1", f"nvidia={REFERENCE}", *TINY]
    )
    assert out["gamut"]["timed_iterations"] == out["nvidia"]["timed_iterations"] == 16
    assert out["gamut"]["phases"]["Dreg"]["every"] == out["nvidia"]["phases"]["Dreg"]["every"] == 16
    assert out["same_parameter_counts"] and out["nvidia"]["params_G"] == out["gamut"]["params_G"]
    assert set(out["nvidia"]["phases"]) == {"Gmain", "Dmain", "Dreg"}
    assert out["nvidia"]["ops"]["filtered_lrelu"].endswith(" calls in _filtered_lrelu_ref")
    assert out["speedup"] > 0 and out["inference_speedup"] > 0
