"""NVIDIA's mixed-precision recipe under ``16-mixed`` (src/nn/precision.py), checked on the CPU with fp16
autocast (what Lightning's 16-mixed plugin enters): fp16 only in the highest ``num_fp16_res`` resolutions
of G and D, the mapping, the styles, the image sum and D's epilogue in float32, the modulated
convolution pre-normalised where it runs in fp16, ``conv_clamp`` 256 by default, and the start-up
checks. ``32-true`` and ``bf16-mixed`` are unchanged (tests/test_any_size.py, tests/test_precision.py)."""

from __future__ import annotations

import pytest
import torch

from src.modules.stylegan2.discriminator import Discriminator
from src.modules.stylegan2.generator import Generator
from src.nn.layers import modulated_conv2d
from src.utils.validation import ConfigError, validate
from tests.conftest import TINY, compose_cfg

NET = dict(resolution=(32, 32), channel_base=256, channel_max=16)  # blocks at 4, 8, 16, 32


def _dtypes(blocks, call):
    """The dtype of each block's output while ``call()`` runs."""
    seen: dict[int, torch.dtype] = {}

    def record(k: int):
        return lambda m, i, out: seen.__setitem__(k, (out[0] if isinstance(out, tuple) else out).dtype)

    hooks = [b.register_forward_hook(record(k)) for k, b in enumerate(blocks)]
    try:
        result = call()
    finally:
        for h in hooks:
            h.remove()
    return [seen[k] for k in range(len(blocks))], result


def test_generator_runs_fp16_in_the_top_resolutions_only():
    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, map_depth=1, num_fp16_res=2, **NET)
    z = torch.randn(2, 8)
    with torch.autocast("cpu", dtype=torch.float16):
        ws = G.mapping(z)
        dtypes, img = _dtypes(G.synthesis.blocks, lambda: G.synthesis(ws, noise_mode="const"))
    assert ws.dtype == torch.float32  # the mapping stays float32
    assert dtypes == [torch.float32, torch.float32, torch.float16, torch.float16]  # 16 and 32 px in fp16
    assert img.dtype == torch.float32  # the skip generator's image sum stays float32
    reference = G(z, noise_mode="const")
    assert (img - reference).abs().max() < 0.05  # fp16 where it runs, close to the float32 result

    # bf16 autocast is not the fp16 recipe: every block in bf16, as before
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dtypes, _ = _dtypes(G.synthesis.blocks, lambda: G(z, noise_mode="const"))
    assert dtypes == [torch.bfloat16] * 4
    # num_fp16_res=4 at 32 px: every block but the 4x4 one (NVIDIA's fp16_resolution >= 8)
    G4 = Generator(z_dim=8, w_dim=8, map_depth=1, num_fp16_res=4, **NET)
    assert [b.use_fp16 for b in G4.synthesis.blocks] == [False, True, True, True]


def test_discriminator_runs_fp16_in_the_top_resolutions_and_the_epilogue_in_float32():
    torch.manual_seed(0)
    D = Discriminator(num_classes=3, num_fp16_res=1, mbstd_group=2, **NET)  # blocks at 32, 16, 8
    img, c = torch.randn(2, 3, 32, 32), torch.eye(3)[:2]
    with torch.autocast("cpu", dtype=torch.float16):
        dtypes, logits = _dtypes(D.blocks, lambda: D(img, c))
    assert dtypes == [torch.float16, torch.float32, torch.float32]  # only the 32 px block in fp16
    assert logits.dtype == torch.float32
    assert (logits - D(img, c)).abs().max() < 0.05


def test_prenormalisation_is_the_same_function_and_keeps_fp16_finite():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    weight = torch.randn(4, 8, 3, 3) * 300.0
    styles = torch.randn(2, 8) * 300.0  # (w * s)^2 summed over 72 taps: ~6e11, far beyond fp16's 65504
    plain = modulated_conv2d(x, weight, styles)
    assert torch.allclose(modulated_conv2d(x, weight, styles, prenormalize=True), plain, atol=1e-5, rtol=1e-4)
    with torch.autocast("cpu", dtype=torch.float16):
        naive = modulated_conv2d(x.half(), weight, styles.half())
        recipe = modulated_conv2d(x.half(), weight, styles.half(), prenormalize=True)
    assert not torch.isfinite(naive.float()).all() or (naive.float() - plain).abs().max() > 0.5
    assert recipe.dtype == torch.float16 and torch.isfinite(recipe).all()
    assert (recipe.float() - plain).abs().max() < 0.05 * plain.abs().max()


def test_training_steps_under_fp16_autocast_with_the_recipe(log_dir):
    """A few steps of the real module with Lightning's fp16 plugin (passed explicitly: on a CPU,
    Lightning's 16-mixed means bf16): finite losses, G's top blocks in fp16, the regularisers in float32."""
    import hydra
    from pytorch_lightning.plugins.precision import MixedPrecision

    from src.callbacks.limits import bare_trainer
    from src.modules.stylegan2.module import StyleGAN2

    cfg = compose_cfg([*TINY, "logger=none", "run_name=t", "model.num_fp16_res=2", "model.conv_clamp=256"])
    torch.manual_seed(0)
    model = StyleGAN2(**dict(hydra.utils.instantiate(cfg.model, _partial_=True).keywords))
    seen: dict[str, set] = {"block": set(), "reg": set()}
    model.G.synthesis.blocks[-1].register_forward_hook(lambda m, i, out: seen["block"].add(out[0].dtype))
    original = model.fp32

    def fp32_phase():
        seen["reg"].add(torch.is_autocast_enabled("cpu"))
        return original()

    model.fp32 = fp32_phase
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=1.0))
    trainer = bare_trainer(2, plugins=[plugin])
    trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data))
    logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("Loss/")}
    assert {"Loss/G", "Loss/D", "Loss/r1", "Loss/pl"} <= set(logged)
    assert all(v == v and abs(v) < float("inf") for v in logged.values())
    assert torch.float16 in seen["block"]  # the top block ran in fp16 during training
    assert seen["reg"] == {True}  # regularisers entered from fp16 autocast, and turned it off


def test_conv_clamp_is_256_under_16_mixed_by_default():
    assert compose_cfg(["trainer=gpu", "trainer.precision=16-mixed"]).model.conv_clamp == 256
    assert compose_cfg(["trainer=gpu", "trainer.precision=bf16-mixed"]).model.conv_clamp is None
    assert compose_cfg(["trainer=gpu", "trainer.precision=16-mixed", "model.conv_clamp=null"]).model.conv_clamp is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["trainer.accelerator=cpu", "trainer.precision=16-mixed"],
            r"trainer.precision=16-mixed: fp16 needs a CUDA GPU",
        ),
        (["model.num_fp16_res=5"], r"model.num_fp16_res=5: this model has only 4 resolutions"),
        (["model.num_fp16_res=-1"], r"model.num_fp16_res=-1: expected an integer >= 0"),
    ],
)
def test_bad_precision_settings_stop_at_start_up(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_cfg(["data.resolution=32", *overrides]))
