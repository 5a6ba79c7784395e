"""Layer view: what each ToRGB adds, and the image after each resolution (cf. stylegan3 visualizer.py).

Two views, picked by what the synthesis network declares (:func:`layer_view_grid`). A skip network (its
``skip_blocks()``: StyleGAN2, SEGAN) gets the ToRGB view below. Any other synthesis network (the alias-free
one: an input, 14 layers and a ToRGB layer, each at its own size including the margin it computes beyond the
image) gets the activation view of NVlabs/stylegan3's ``viz/renderer.py``: forward hooks read each stage's
output, whatever the family, and three consecutive channels of it are shown as RGB, each scaled to its own max
|value| (that renderer's ``img_normalize``), centred at its own size.

The skip generator's image is ``img_k = up(img_{k-1}) + toRGB_k(x_k)`` (plus SEGAN mode 1's image
offsets). Hooks on the synthesis blocks read every ``img_k``; block k's contribution at full size is
``up^(n-1-k)(img_k - up(img_{k-1}))``. The FIR upsampling is linear, so the contributions sum to the
final image exactly (up to float rounding), and the running sums are the partial images.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from src.nn.layers import upsample2d
from src.nn.style_generator import StyleSynthesis


def _up(x: Tensor, fir: Tensor, times: int) -> Tensor:
    for _ in range(times):
        x = upsample2d(x, fir)
    return x


def skip_blocks(synthesis: nn.Module) -> nn.ModuleList | None:
    """The blocks of a skip synthesis network (each returning ``(x, img)``), None for any other network
    (declared by the network: :meth:`src.nn.style_generator.StyleSynthesis.skip_blocks`)."""
    return synthesis.skip_blocks() if isinstance(synthesis, StyleSynthesis) else None


@torch.no_grad()
def layer_contributions(synthesis: nn.Module, ws: Tensor, noise_mode: str = "const") -> tuple[Tensor, Tensor, Tensor]:
    """``(contributions, running, image)`` in model space: ``[B, N, C, H, W]`` per block (B blocks), the
    running sums (same shape; the last one is the image) and the final image ``[N, C, H, W]``."""
    blocks = skip_blocks(synthesis)
    if blocks is None:
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


def layer_view_grid(model, ws: Tensor, noise_mode: str = "const", channel: int = 0) -> tuple[Tensor, int]:
    """The layer view of ``model``'s generator for the codes ``ws``: images and the column count.

    A skip network: two rows per latent, normalised contributions, then the decoded running sums; one
    column per block (``[2 * N * B, 3, H, W]``, B columns). Any other network: :func:`activation_view_grid`
    from ``channel`` on."""
    if skip_blocks(model.G.synthesis) is None:
        images, ncol, _ = activation_view_grid(model, ws, noise_mode, channel)
        return images, ncol
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


# ----------------------------------------------------------------------------------------------
# Activation view: any synthesis network, each stage's output at its own size.


def synthesis_stages(synthesis: nn.Module) -> list[tuple[str, nn.Module]]:
    """The stages whose outputs the activation view shows, in definition order: each direct child of
    ``synthesis``, a child that is an ``nn.ModuleList`` replaced by its members (``layers.0``, ...)."""
    stages: list[tuple[str, nn.Module]] = []
    for name, child in synthesis.named_children():
        if isinstance(child, nn.ModuleList):
            stages.extend((f"{name}.{i}", member) for i, member in enumerate(child))
        else:
            stages.append((name, child))
    return stages


@torch.no_grad()
def layer_activations(
    synthesis: nn.Module, ws: Tensor, noise_mode: str = "const"
) -> tuple[list[tuple[str, Tensor]], Tensor]:
    """``([(stage name, output [N, C, h, w]), ...] in call order, final image [N, C, H, W])``.

    Every 4-D tensor a stage (:func:`synthesis_stages`) returns is recorded (``name:k`` for the k-th of
    several), in float32; the image is the synthesis network's output in the model's colour space."""
    captured: list[tuple[str, Tensor]] = []

    def recorder(name: str):
        def record(module: nn.Module, args: object, out: object) -> None:
            outs = list(out) if isinstance(out, tuple | list) else [out]
            tensors = [o for o in outs if isinstance(o, Tensor) and o.ndim == 4]
            for k, t in enumerate(tensors):
                captured.append((name if len(tensors) == 1 else f"{name}:{k}", t.detach().float()))

        return record

    hooks = [module.register_forward_hook(recorder(name)) for name, module in synthesis_stages(synthesis)]
    try:
        final = synthesis(ws, noise_mode=noise_mode).float()
    finally:
        for h in hooks:
            h.remove()
    return captured, final


def activation_channels(x: Tensor, channel: int = 0) -> Tensor:
    """``[N, C, h, w]`` -> ``[N, 3, h, w]`` in [0, 1]: channels ``channel .. channel + 2`` as RGB (one
    channel as gray when ``C < 3``; ``channel`` clamped to the last three), each scaled by its own max
    |value| per image so that 0 is mid-gray (NVlabs/stylegan3 ``viz/renderer.py``'s ``img_normalize``)."""
    c = x.shape[1]
    k = 3 if c >= 3 else 1
    base = max(0, min(int(channel), c - k))
    sel = x[:, base : base + k].float()
    m = sel.abs().amax(dim=(2, 3), keepdim=True).clamp_min(1e-8)
    y = (sel / m + 1) * 0.5
    return y.repeat(1, 3, 1, 1) if k == 1 else y


def centred(images: Tensor, height: int, width: int) -> Tensor:
    """``[N, C, h, w]`` placed in the middle of a black ``[N, C, height, width]`` canvas."""
    n, c, h, w = images.shape
    canvas = images.new_zeros(n, c, height, width)
    top, left = (height - h) // 2, (width - w) // 2
    canvas[:, :, top : top + h, left : left + w] = images
    return canvas


def activation_view_grid(
    model, ws: Tensor, noise_mode: str = "const", channel: int = 0
) -> tuple[Tensor, int, list[str]]:
    """One row per latent: each stage's activation (:func:`activation_channels`), then the decoded image,
    each centred on a canvas of the largest stage's size. Returns images ``[N * S, 3, Hmax, Wmax]``, the
    column count S and the columns' names (``input 64x36x36``, ``layers.0 64x36x36``, ..., ``image``)."""
    acts, final = layer_activations(model.G.synthesis, ws.to(model.device), noise_mode)
    if not acts:
        raise ValueError(f"{type(model.G.synthesis).__name__}: no stage returned a 4-D tensor to show")
    image = model.colorspace.decode(final)[:, :3]
    if image.shape[1] == 1:
        image = image.repeat(1, 3, 1, 1)
    shown = [activation_channels(a, channel) for _, a in acts] + [image.float()]
    height, width = max(s.shape[2] for s in shown), max(s.shape[3] for s in shown)
    columns = torch.stack([centred(s, height, width).cpu() for s in shown], dim=1)  # [N, S, 3, Hmax, Wmax]
    names = [f"{name} {a.shape[1]}x{a.shape[2]}x{a.shape[3]}" for name, a in acts] + ["image"]
    return columns.flatten(0, 1), columns.shape[1], names
