"""NVIDIA's mixed-precision recipe for fp16 (``trainer.precision=16-mixed``), as stylegan2-ada-pytorch's
``training/networks.py`` runs StyleGAN2.

Lightning's ``16-mixed`` puts the whole training step under fp16 autocast. NVIDIA instead keeps fp16
to the convolutions of the highest ``num_fp16_res`` resolutions (never the 4x4 one) and runs
everything else in float32: the mapping networks, the styles (affine layers), the demodulation
coefficients, the low-resolution blocks, the image sum of the skip generator and D's epilogue; the
modulated convolution pre-normalises weights and styles in its fp16 layers, and ``conv_clamp``
(256) bounds every activation. The networks read the active autocast and follow this recipe when it
is fp16; under ``bf16-mixed`` and ``32-true`` they run as before. Which blocks run in fp16:
:func:`src.utils.resolution.fp16_first_block`.
"""

from __future__ import annotations

import torch

__all__ = ["fp16_autocast", "float32"]


def fp16_autocast(device_type: str) -> bool:
    """Whether fp16 autocast is active on ``device_type`` (``16-mixed``): the recipe applies."""
    return torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type) == torch.float16


def float32(device_type: str):
    """A context that turns autocast off (float32), for the parts of the recipe that stay in fp32."""
    return torch.autocast(device_type, enabled=False)
