"""Layer view: what each ToRGB adds, and the image after each resolution (cf. stylegan3 visualizer.py).

The skip generator's image is ``img_k = up(img_{k-1}) + toRGB_k(x_k)`` (plus SEGAN mode 1's image
offsets). Hooks on the synthesis blocks read every ``img_k``; block k's contribution at full size is
``up^(n-1-k)(img_k - up(img_{k-1}))``. The FIR upsampling is linear, so the contributions sum to the
final image exactly (up to float rounding), and the running sums are the partial images.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from src.nn.layers import upsample2d


def _up(x: Tensor, fir: Tensor, times: int) -> Tensor:
    for _ in range(times):
        x = upsample2d(x, fir)
    return x


@torch.no_grad()
def layer_contributions(synthesis: nn.Module, ws: Tensor, noise_mode: str = "const") -> tuple[Tensor, Tensor, Tensor]:
    """``(contributions, running, image)`` in model space: ``[B, N, C, H, W]`` per block (B blocks), the
    running sums (same shape; the last one is the image) and the final image ``[N, C, H, W]``."""
    blocks = synthesis.blocks
    if not isinstance(blocks, nn.ModuleList):
        raise TypeError(f"{type(synthesis).__qualname__} is not a skip synthesis network (no blocks)")
    images: list[Tensor] = []
    hooks = [b.register_forward_hook(lambda m, args, out: images.append(out[1])) for b in blocks]
    try:
        final = synthesis(ws, noise_mode=noise_mode).float()
    finally:
        for h in hooks:
            h.remove()
    n = len(images)
    if n != len(blocks):
        raise RuntimeError(f"expected {len(blocks)} block outputs, got {n}")
    contributions = []
    for k, img in enumerate(images):
        fir = blocks[k].fir  # the block's upsampling filter (a buffer)
        assert isinstance(fir, Tensor)
        own = img.float() if k == 0 else img.float() - upsample2d(images[k - 1].float(), fir)
        contributions.append(_up(own, fir, n - 1 - k))
    contrib = torch.stack(contributions)
    return contrib, contrib.cumsum(0), final


def normalize_for_display(x: Tensor) -> Tensor:
    """Signed maps ``[N, C, H, W]`` -> [0, 1], each image scaled by its own max |value| (0 -> 0.5).

    One channel is shown as gray, three as RGB, four as their first three."""
    m = x.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
    y = (x / m + 1) * 0.5
    return y[:, :3] if y.shape[1] >= 3 else y


def layer_view_grid(model, ws: Tensor, noise_mode: str = "const") -> tuple[Tensor, int]:
    """Two rows per latent: normalised contributions, then the decoded running sums; one column per
    block. Returns images ``[2 * N * B, 3, H, W]`` and the column count B."""
    contrib, running, _ = layer_contributions(model.G.synthesis, ws.to(model.device), noise_mode)
    b, n = contrib.shape[:2]
    rows = []
    for i in range(n):
        shown = normalize_for_display(contrib[:, i])
        if shown.shape[1] == 1:
            shown = shown.repeat(1, 3, 1, 1)
        rows.append(shown.cpu())
        rows.append(model.colorspace.decode(running[:, i])[:, :3].cpu())
    return torch.cat(rows), b
