"""Mixed precision on CPU: bf16-mixed fits for each family; regularizers stay in fp32."""

from __future__ import annotations

import pytest
import torch

from src.train import train

# model overrides per StyleGAN-family model (ChromaGAN has its own test below)
FAMILIES = {"stylegan2": [], "segan": ["model=segan"]}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_bf16_mixed_fit(tiny_cfg, log_dir, family):
    metrics = train(tiny_cfg(*FAMILIES[family], "trainer.max_steps=2", "trainer.precision=bf16-mixed",
                             "model.loss.r1_interval=1", "model.loss.pl_interval=1"))
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
    metrics = train(compose_cfg([
        "experiment=chromagan_tinyimagenet", f"data.root={root}", f"paths.weights_dir={tmp_path}",
        "model.num_classes=3", "model.trunk_pretrained=false", *TINY_CHROMA, "trainer.max_steps=2",
        "trainer.precision=bf16-mixed", "logger=none", "run_name=test"]))
    for key in ("Loss/G", "Loss/D", "Loss/gp", "Loss/kl", "val/psnr", "val/psnr_gray"):
        assert key in metrics and metrics[key] == metrics[key], key  # present and finite
    state = torch.load(log_dir / "chromagan_tinyimagenet" / "test" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["iteration"] == 2
    assert all(v.dtype != torch.bfloat16 for v in state["state_dict"].values())
