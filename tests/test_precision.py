"""Mixed precision on CPU: bf16-mixed fits for each family; regularizers stay in fp32."""

from __future__ import annotations

import pytest
import torch

from src.train import train

# model overrides per family; add ChromaGAN here when it lands
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
