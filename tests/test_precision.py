"""Mixed precision on CPU: bf16-mixed fits for each family; regularizers stay in fp32."""

from __future__ import annotations

import pytest
import torch

from src.train import train

# model overrides per StyleGAN-family model (ChromaGAN has its own test below)
FAMILIES = {"stylegan2": [], "segan": ["model=segan"]}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_bf16_mixed_fit(tiny_cfg, log_dir, family):
    metrics = train(
        tiny_cfg(
            *FAMILIES[family],
            "trainer.max_steps=2",
            "trainer.precision=bf16-mixed",
            "model.loss.r1_interval=1",
            "model.loss.pl_interval=1",
        )
    )
    for key in ("Loss/G", "Loss/D", "Loss/r1", "Loss/pl"):
        assert key in metrics and metrics[key] == metrics[key], key  # present and finite
    state = torch.load(log_dir / "quickstart" / "test" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["iteration"] == 2
    assert all(v.dtype != torch.bfloat16 for v in state["state_dict"].values())  # weights stay fp32


def test_bf16_mixed_fit_chromagan(log_dir, tmp_path):
    """ChromaGAN under bf16-mixed: G, critic and teacher in bf16, the gradient penalty in fp32."""
    import torchvision

    from tests.conftest import compose_cfg
    from tests.test_chromagan import TINY_CHROMA
    from tests.test_tinyimagenet import make_tiny_imagenet

    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), tmp_path / "vgg16-397923af.pth")
    root = make_tiny_imagenet(tmp_path, per_class=2)
    metrics = train(
        compose_cfg(
            [
                "experiment=chromagan_tinyimagenet",
                f"data.root={root}",
                f"paths.weights_dir={tmp_path}",
                "model.num_classes=3",
                "model.trunk_pretrained=false",
                *TINY_CHROMA,
                "trainer.max_steps=2",
                "trainer.precision=bf16-mixed",
                "logger=none",
                "run_name=test",
            ]
        )
    )
    for key in ("Loss/G", "Loss/D", "Loss/gp", "Loss/kl", "val/psnr", "val/psnr_gray"):
        assert key in metrics and metrics[key] == metrics[key], key  # present and finite
    state = torch.load(log_dir / "chromagan_tinyimagenet" / "test" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["iteration"] == 2
    assert all(v.dtype != torch.bfloat16 for v in state["state_dict"].values())


def test_fp16_loss_scaling_is_separate_for_g_and_d(log_dir):
    """16-mixed: an overflow in G's step backs off G's loss scale only; D's steps keep scaling with
    their own, and every scaler travels in the checkpoint. (Lightning maps 16-mixed to bf16 on CPU, so
    the fp16 plugin is passed explicitly; CPU autocast runs fp16.)"""
    import hydra
    from pytorch_lightning.plugins.precision import MixedPrecision

    from src.callbacks.limits import bare_trainer
    from src.modules.stylegan2.module import StyleGAN2
    from tests.conftest import TINY, compose_cfg

    class OverflowOnce(StyleGAN2):
        used: list = []  # (optimizer index, loss scale used) per phase

        def g_main_loss(self, fake_logits, log):  # an infinite gradient in G's first step only
            loss = super().g_main_loss(fake_logits, log)
            if self.iteration == 0:
                return loss + next(self.G.parameters()).sum() * float("inf")
            return loss

        def use_loss_scaler(self, opt):
            super().use_loss_scaler(opt)
            index = [o for o in self.trainer.optimizers].index(opt.optimizer)
            self.used.append((index, self.trainer.precision_plugin.scaler.get_scale()))

    cfg = compose_cfg([*TINY, "logger=none", "run_name=t", "model.check_finite_every=0"])
    kwargs = dict(hydra.utils.instantiate(cfg.model, _partial_=True).keywords)
    torch.manual_seed(0)
    model = OverflowOnce(**kwargs)
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=1.0))
    trainer = bare_trainer(1, plugins=[plugin])
    trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data))
    # iteration 0: Gmain (overflow: G's scale 1 -> 0.5), Greg with 0.5, then Dmain with D's own 1.0
    # (one shared scaler would have handed D the 0.5 that G's overflow left behind)
    assert model.used[:3] == [(0, 1.0), (0, 0.5), (1, 1.0)]
    ckpt = {}
    model.on_save_checkpoint(ckpt)
    assert [s["scale"] for s in ckpt["gamut"]["grad_scalers"]] == model.loss_scales()
    assert model.loss_scales()[0] == 0.5
    resumed = OverflowOnce(**kwargs)
    resumed.on_load_checkpoint(ckpt)
    assert resumed.loss_scalers.pending == ckpt["gamut"]["grad_scalers"]
