"""StyleGAN3's training (src/modules/stylegan3/module.py, losses.py) held to what NVlabs/stylegan3 computes.

Expected values come from the formulas of NVIDIA's ``training/loss.py`` and ``train.py``, written out
here with numpy/scipy, never from ``src.modules.stylegan3.losses``:

* config R blurs every image D sees: taps ``2 ** (-(x / sigma)**2)`` for ``|x| <= floor(3 sigma)``,
  normalised, separable, zero padding (``upfirdn2d.filter2d``), sigma
  ``max(1 - cur_nimg / (fade_kimg * 1e3), 0) * init_sigma`` with ``cur_nimg`` before the iteration;
* the input magnitude EMAs move only in Dmain's generated-image pass (``run_G(..., update_emas=True)``):
  ``ema <- lerp(mean(x**2), ema, beta)``, ``beta = 0.5 ** (batch / 20000)``;
* ``--cfg=stylegan3-r`` doubles G's channel base and max, not D's; ``--gamma`` is required.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from src.modules.stylegan3 import losses
from src.modules.stylegan3.module import StyleGAN3
from src.train import train
from src.utils.validation import ConfigError
from tests.test_training_step import BATCH, FixedImages, fit

RES = 16
TINY3 = dict(resolution=RES, z_dim=8, w_dim=8, channel_base=256, channel_max=16, mbstd_group=2, check_finite_every=0)


def _kernel(sigma: float) -> np.ndarray:
    size = int(np.floor(3 * sigma))
    x = np.arange(-size, size + 1, dtype=np.float64)
    f = 2.0 ** (-((x / sigma) ** 2))
    return f / f.sum()


# ------------------------------------------------------------------------------------------------
# the blur of D's images (config R)


def test_blur_kernel_is_nvidias():
    f = losses.blur_kernel(10.0)
    assert f.numel() == 61  # floor(3 * 10) taps either side
    np.testing.assert_allclose(f.numpy(), _kernel(10.0), rtol=1e-6, atol=1e-9)
    assert losses.blur_kernel(0.5).numel() == 3


@pytest.mark.parametrize("sigma", [0.7, 2.0, 10.0])
def test_blur_is_a_zero_padded_separable_convolution(sigma):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 20, dtype=torch.float64)
    got = losses.gaussian_blur(x, sigma)
    f = _kernel(sigma)
    k2 = np.outer(f, f)
    for n in range(2):
        for c in range(3):
            want = convolve2d(x[n, c].numpy(), k2, mode="same", boundary="fill")
            np.testing.assert_allclose(got[n, c].numpy(), want, atol=1e-6)  # taps in float32, as NVIDIA's


def test_blur_below_a_third_of_a_pixel_is_the_identity():
    x = torch.randn(1, 3, 8, 8)
    assert losses.gaussian_blur(x, 0.33) is x


@pytest.mark.parametrize(
    "cur_nimg,expected", [(0, 10.0), (50_000, 7.5), (100_000, 5.0), (200_000, 0.0), (1_000_000, 0.0)]
)
def test_blur_sigma_fades_linearly(cur_nimg, expected):
    assert losses.blur_sigma(cur_nimg, 10.0, 200.0) == pytest.approx(expected)


def test_no_fade_means_no_blur():
    assert losses.blur_sigma(0, 10.0, 0.0) == 0.0


def test_hsv_blur_keeps_a_constant_hue():
    """Red written -0.999 and +0.999 alternating: blurred as an angle it stays red; as a plain number
    it would average to 0 (cyan)."""
    x = torch.zeros(1, 3, 8, 8)
    x[:, 0] = torch.where(torch.arange(8) % 2 == 0, -0.999, 0.999).view(1, 8)
    x[:, 1:] = 0.5
    linear = losses.gaussian_blur(x, 2.0)
    assert linear[0, 0, 4, 4].abs() < 0.2
    circular = losses.gaussian_blur(x, 2.0, hue_channel=0)
    distance_to_red = 1 - circular[0, 0].abs()
    assert distance_to_red.max() < 2e-3


def test_magnitude_beta_is_nvidias_half_life():
    assert losses.magnitude_ema_beta(32) == pytest.approx(0.5 ** (32 / 20e3))


# ------------------------------------------------------------------------------------------------
# the training step


class Recording(StyleGAN3):
    """Records each phase's magnitude EMAs, the first layer's inputs and what D is handed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.record: list[dict] = []
        self._entry: dict | None = None
        first = self.G.synthesis.typed_layers()
        next(iter(first)).register_forward_pre_hook(self._on_layer0)
        self.D.register_forward_pre_hook(self._on_d)

    def _emas(self) -> torch.Tensor:
        return torch.stack([layer.magnitude_ema.clone() for layer in self.G.synthesis.typed_layers()])

    def _on_layer0(self, module, args) -> None:
        if self._entry is not None:
            self._entry.setdefault("layer0_inputs", []).append(args[0].detach().clone())

    def _on_d(self, module, args) -> None:
        if self._entry is not None:
            self._entry.setdefault("d_inputs", []).append(args[0].detach().clone())

    @contextlib.contextmanager
    def phase(self, name: str):
        entry = dict(name=name, it=self.iteration, cur_nimg=self.cur_nimg, emas=self._emas())
        self._entry = entry
        self.record.append(entry)
        try:
            yield
        finally:
            entry["emas_after"] = self._emas()
            self._entry = None


def test_magnitude_emas_move_in_dmain_only_with_nvidias_rule():
    torch.manual_seed(0)
    model = fit(Recording(**TINY3, loss=dict(r1_gamma=1.0, r1_interval=2)), 3)
    beta = 0.5 ** (BATCH / 20e3)
    dmain = [e for e in model.record if e["name"] == "Dmain"]
    assert len(dmain) == 3
    for e in model.record:
        if e["name"] != "Dmain":
            assert torch.equal(e["emas"], e["emas_after"]), e["name"]
    for e in dmain:
        (x,) = e["layer0_inputs"]  # one generated-image pass
        expected = x.double().square().mean().lerp(e["emas"][0].double(), beta)
        assert e["emas_after"][0].double().item() == pytest.approx(expected.item(), rel=1e-6)
        assert (e["emas_after"] != e["emas"]).all()  # every layer moved
    # G_ema carries G's EMAs (update_ema copies buffers)
    for a, b in zip(model.G.synthesis.typed_layers(), model.G_ema.synthesis.typed_layers()):
        assert torch.equal(a.magnitude_ema, b.magnitude_ema)


def test_magnitude_beta_per_round_keeps_the_half_life():
    """With data.batch_gpu = batch / 2, each round moves the EMA by beta ** (1/2)."""
    torch.manual_seed(0)
    model = fit(Recording(**TINY3, batch_gpu=2, loss=dict(r1_gamma=1.0)), 1)
    (e,) = [e for e in model.record if e["name"] == "Dmain"]
    half = (0.5 ** (BATCH / 20e3)) ** 0.5
    ema = e["emas"][0].double()
    for x in e["layer0_inputs"]:
        ema = x.double().square().mean().lerp(ema, half)
    assert e["emas_after"][0].double().item() == pytest.approx(ema.item(), rel=1e-6)


def test_d_sees_blurred_images_while_the_blur_lasts():
    """Config R's blur, sigma 2 fading over 8 images: Dreg's D input is the blurred reals at iteration 0,
    half the sigma at iteration 1 (4 images seen), the reals themselves from iteration 2."""
    torch.manual_seed(0)
    model = fit(Recording(**TINY3, loss=dict(r1_gamma=1.0, r1_interval=1), blur=dict(sigma=2.0, fade_kimg=0.008)), 3)
    reals = FixedImages(RES).images.double()
    dreg = [e for e in model.record if e["name"] == "Dreg"]
    for e, sigma in zip(dreg, [2.0, 1.0, 0.0]):
        (seen,) = e["d_inputs"]
        f = _kernel(sigma) if sigma > 0 else np.ones(1)
        k2 = np.outer(f, f)
        for n in range(BATCH):
            for c in range(3):
                want = convolve2d(reals[n, c].numpy(), k2, mode="same", boundary="fill")
                np.testing.assert_allclose(seen[n, c].double().numpy(), want, atol=2e-6)
    # Gmain's and Dmain's D inputs are blurred too (fakes and reals): not equal to the unblurred fakes
    gmain0 = next(e for e in model.record if e["name"] == "Gmain")
    assert len(gmain0["d_inputs"]) == 1


def test_config_r_doubles_g_widths_not_d():
    t = StyleGAN3(**{**TINY3, "channel_base": 128, "channel_max": 8})
    r = StyleGAN3(**{**TINY3, "channel_base": 128, "channel_max": 8}, g_channel_base=256, g_channel_max=16)
    assert max(t.G.synthesis.schedule.channels) == 8 and max(r.G.synthesis.schedule.channels) == 16
    for a, b in zip(t.D.parameters(), r.D.parameters()):
        assert a.shape == b.shape


# ------------------------------------------------------------------------------------------------
# through src.train: the presets, any size and colour space, exact resume

SG3 = [
    "model=stylegan3",
    "data.batch_size=4",
    "model.z_dim=8",
    "model.w_dim=8",
    "model.channel_base=256",
    "model.channel_max=16",
    "model.mbstd_group=2",
    "model.augment.mode=none",
    "trainer.max_kimg=null",
]


def _state(log_dir, run_name: str) -> dict:
    from tests.test_train import _final_state

    return _final_state(log_dir, run_name)


def test_gamma_is_required_as_nvidia_requires_it(tiny_cfg):
    with pytest.raises(ConfigError, match="model.loss.r1_gamma is required"):
        train(tiny_cfg(*SG3, "preset=stylegan3-t", "trainer.max_steps=1"))


def test_presets_compose_nvidias_settings():
    from omegaconf import OmegaConf

    from tests.conftest import compose_cfg

    default = compose_cfg(["model=stylegan3", "model.loss.r1_gamma=2"])
    t = OmegaConf.to_container(compose_cfg(["model=stylegan3", "preset=stylegan3-t", "model.loss.r1_gamma=2"]).model)
    r = OmegaConf.to_container(compose_cfg(["model=stylegan3", "preset=stylegan3-r", "model.loss.r1_gamma=2"]).model)
    assert OmegaConf.to_container(default.model) == t  # model=stylegan3 defaults to stylegan3-t
    assert default.data.batch_size == 32
    assert t["optim"]["g_lr"] == 0.0025 and t["optim"]["d_lr"] == 0.002
    assert t["loss"]["pl_weight"] == 0 and t["loss"]["style_mixing_prob"] == 0
    assert t["map_depth"] == 2 and t["conv_kernel"] == 3 and not t["use_radial_filters"]
    assert (t["channel_base"], t["channel_max"], t["g_channel_base"]) == (32768, 512, None)
    assert (r["g_channel_base"], r["g_channel_max"], r["channel_base"], r["channel_max"]) == (65536, 1024, 32768, 512)
    assert r["conv_kernel"] == 1 and r["use_radial_filters"]
    assert r["blur"] == {"sigma": 10.0, "fade_kimg": 200}  # batch 32: 32 * 200 / 32


@pytest.mark.slow
def test_config_r_trains_in_hsv_at_48x80_and_resumes_bit_exactly(tiny_cfg, log_dir):
    """--cfg=stylegan3-r (shrunk), HSV, a non-square size: N + N steps == 2N steps, bit for bit."""
    common = [
        *SG3,
        "preset=stylegan3-r",
        "model.loss.r1_gamma=1",
        "model.g_channel_base=512",
        "model.g_channel_max=32",
        "model.blur.fade_kimg=0.02",
        "model.loss.r1_interval=3",
        "colorspace=hsv",
        "data.resolution=[48,80]",
    ]
    train(tiny_cfg(*common, "trainer.max_steps=4", run_name="straight"))
    train(tiny_cfg(*common, "trainer.max_steps=2", run_name="split"))
    train(tiny_cfg(*common, "trainer.max_steps=4", "ckpt_path=last", run_name="split"))
    a, b = _state(log_dir, "straight"), _state(log_dir, "split")
    assert a["gamut"]["iteration"] == b["gamut"]["iteration"] == 4
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert a["state_dict"]["G.synthesis.layers.0.weight"].shape == (32, 32, 1, 1)  # G's widths doubled, 1x1
    assert a["state_dict"]["G.synthesis.layers.14.weight"].shape[0] == 3  # ToRGB for HSV's 3 channels
    assert a["hyper_parameters"]["conv_kernel"] == 1


def test_config_t_trains_conditionally_and_generates(tiny_cfg, log_dir, tmp_path):
    """model=stylegan3 (T) with class labels through src.train, then src.tools.generate from its checkpoint:
    the label embedding reaches w, the images have the data's size, class by class."""
    from PIL import Image

    from src.tools import generate
    from tests.test_train import run_dir

    train(tiny_cfg(*SG3, "model.loss.r1_gamma=1", "model.num_classes=6", "data.resolution=16", "trainer.max_steps=2"))
    sd = _state(log_dir, "test")["state_dict"]
    assert sd["G.mapping.embed.weight"].shape == (8, 6)
    assert "G.synthesis.input.freqs" in sd and "G.synthesis.layers.0.magnitude_ema" in sd
    ckpt = run_dir(log_dir, "test") / "checkpoints" / "last.ckpt"
    generate.main([f"ckpt={ckpt}", "seeds=0-1", "class_idx=3", f"out={tmp_path / 'out'}"])
    files = sorted((tmp_path / "out").glob("*.png"))
    assert len(files) == 2
    with Image.open(files[0]) as im:
        assert im.size == (16, 16) and im.mode == "RGB"


def test_training_steps_under_fp16_autocast_with_nvidias_recipe():
    """Lightning's fp16 plugin (explicit: on a CPU, 16-mixed means bf16): the layers NVIDIA's rule marks
    (sampling rate * 2**num_fp16_res > resolution) run in fp16, the others in float32; losses stay finite."""
    from pytorch_lightning.plugins.precision import MixedPrecision

    torch.manual_seed(0)
    options = {**TINY3, "resolution": 32}  # sampling rates 16 and 32 px: the 32 px layers run in fp16
    model = StyleGAN3(**options, num_fp16_res=1, conv_clamp=256, loss=dict(r1_gamma=1.0))
    seen: dict[int, set] = {}
    for i, layer in enumerate(model.G.synthesis.typed_layers()):
        layer.register_forward_hook(lambda m, args, out, i=i: seen.setdefault(i, set()).add(out.dtype))
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=1.0))
    from src.callbacks.limits import bare_trainer

    trainer = bare_trainer(2, plugins=[plugin])
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(FixedImages(32), batch_size=BATCH))
    marked = [layer.use_fp16 for layer in model.G.synthesis.typed_layers()]
    assert any(marked) and not all(marked)
    for i, fp16 in enumerate(marked):
        assert seen[i] == ({torch.float16} if fp16 else {torch.float32}), (i, seen[i])
    logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("Loss/")}
    assert {"Loss/G", "Loss/D", "Loss/r1"} <= set(logged)
    assert all(np.isfinite(v) for v in logged.values())


def test_fine_tune_takes_architecture_from_the_file_and_training_keys_from_the_config():
    """ckpt_init: conv_kernel and widths as the file says; the blur and the magnitude EMA's decay (NVIDIA
    recomputes it from the new batch) and model.perf as this run configures them."""
    from src.checkpoints.load import apply_init_architecture
    from tests.conftest import compose_cfg

    cfg = compose_cfg(["model=stylegan3", "preset=stylegan3-r", "model.loss.r1_gamma=2", "model.perf.compile=true"])
    ckpt = {
        "hyper_parameters": dict(
            conv_kernel=1, g_channel_base=2048, magnitude_ema_beta=0.9989, blur=None, perf=None, w_avg_beta=0.995
        ),
        "gamut": {"module": "src.modules.stylegan3.module.StyleGAN3", "colorspace": "rgb"},
    }
    notes = apply_init_architecture(cfg, ckpt)
    assert cfg.model.g_channel_base == 2048 and any("g_channel_base" in n for n in notes)
    assert cfg.model.blur.sigma == 10.0 and cfg.model.magnitude_ema_beta is None
    assert cfg.model.perf.compile is True and cfg.model.w_avg_beta == 0.998


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(conv_kernel=5), r"model.conv_kernel=5: StyleGAN3 uses 3 \(config T\) or 1 \(config R\)"),
        (dict(magnitude_ema_beta=1.5), r"model.magnitude_ema_beta=1.5: expected null or 0 <= beta <= 1"),
        (dict(blur=dict(sigma=-1.0)), r"model.blur=.*sigma and fade_kimg must be >= 0"),
        (dict(blur=dict(radius=3)), r"model.blur"),
        (dict(synthesis=dict(layers=4)), r"model.synthesis"),
    ],
)
def test_bad_stylegan3_settings_are_refused_naming_the_key(options, message):
    with pytest.raises(ValueError, match=message):
        StyleGAN3(**TINY3, **options)
