"""The reference outputs of StyleGAN2's G and D at square powers of two and at 64x128, written by the
code of commit dde71bd (before sizes of the form b * 2**k were added) into
``tests/data/size_reference.pt``; ``tests/test_any_size.py`` checks today's code against them.

Regenerate only when an intended change alters these networks: ``python -m tests.size_reference``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from src.modules.stylegan2.discriminator import Discriminator
from src.modules.stylegan2.generator import Generator

FILE = Path(__file__).resolve().parent / "data" / "size_reference.pt"
SIZES = ((32, 32), (256, 256), (64, 128))
NET = dict(channel_base=512, channel_max=32)


def outputs(resolution: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Parameter counts, a strided sample of G's images and D's logits for fixed seeds."""
    torch.manual_seed(0)
    G = Generator(z_dim=32, w_dim=32, map_depth=2, resolution=resolution, **NET).eval()
    D = Discriminator(resolution=resolution, mbstd_group=2, **NET).eval()
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        images = G(z, None, noise_mode="const")
        logits = D(images, None)
    return {
        "g_params": torch.tensor(sum(p.numel() for p in G.parameters())),
        "d_params": torch.tensor(sum(p.numel() for p in D.parameters())),
        "images": images[:, :, ::8, ::8].clone(),
        "image_sum": images.double().sum(),
        "logits": logits.clone(),
    }


def build() -> dict[str, dict[str, torch.Tensor]]:
    return {f"{h}x{w}": outputs((h, w)) for h, w in SIZES}


if __name__ == "__main__":
    FILE.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build(), FILE)
    print(f"wrote {FILE}")
