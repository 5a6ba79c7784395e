"""DINOv2 ViT-L/14 features for FD-DINOv2, the Fréchet distance in DINOv2 feature space that Stein
et al. (NeurIPS 2023, "Exposing flaws of generative model evaluation metrics and their unfair
treatment of diffusion models") recommend over Inception FID.

The network is built here, offline, from the DINOv2 paper (Oquab et al. 2023) and its reference code
(facebookresearch/dinov2 ``dinov2/models/vision_transformer.py``, ``dinov2/layers/``), with the
settings of the torch hub entry ``dinov2_vitl14`` (``dinov2/hub/backbones.py``) that dgm-eval loads:
ViT-L/14 (patch 14, width 1024, 24 pre-norm blocks of 16 heads, MLP ratio 4, exact GELU, biases
everywhere), LayerScale on both residual branches, layer norms with eps 1e-6, one class token, no
register tokens, and positional embeddings learned for a 518 px (37 x 37 patch) grid, resized to the
input's grid by bicubic interpolation (no antialiasing) at the scale ``(grid + 0.1) / 37``, DINOv2's
``interpolate_offset``. The feature is the class token after the final layer norm (1024-d), what the
hub model's ``forward`` returns. Its parameters carry the upstream names, so
``dinov2_vitl14_pretrain.pth`` loads strictly, read with ``torch.load(weights_only=True)``.

Preprocessing is dgm-eval's (layer6ai-labs/dgm-eval ``dgm_eval/models/dinov2.py``,
``DINOv2Encoder.transform`` with its default ``clean_resize=False``): the uint8 RGB image resized to
224 x 224 by torchvision's ``Resize`` on a PIL image, i.e. Pillow's bicubic resampling, then scaled to
[0, 1] and normalised with the ImageNet mean and std. :func:`pil_bicubic_resize` computes Pillow's
8-bit resampling exactly on tensors (Pillow ``src/libImaging/Resample.c``), so no image leaves the
device.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.pretrained.weights import MissingWeightsError, load_weights, weights_path

WIDTH = 1024  # ViT-L's embedding width: the feature size
INPUT_SIZE = 224  # dgm-eval's resize
PATCH = 14
GRID = 37  # the positional embeddings' grid: 518 px / 14
INTERPOLATE_OFFSET = 0.1  # dinov2_vitl14's interpolate_offset
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Pillow's fixed-point resampling of 8-bit images: coefficients in 22 fractional bits.
_PRECISION_BITS = 22


# -- preprocessing ---------------------------------------------------------------------------------


def _pil_bicubic(x: float) -> float:
    """Pillow's bicubic kernel (Keys' cubic convolution with a = -0.5), support 2."""
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


@functools.lru_cache(maxsize=16)
def _pil_coefficients(in_size: int, out_size: int) -> Tensor:
    """``[out_size, in_size]`` float64 matrix of Pillow's integer bicubic coefficients (scaled by
    2**22) for resampling one axis from ``in_size`` to ``out_size`` samples.

    As Pillow's ``precompute_coeffs`` and ``normalize_coeffs_8bpc``: when shrinking, the kernel is
    stretched by the scale; each output's taps are normalised to sum 1, then rounded half away from
    zero to fixed point. The float operations run in Pillow's order, so the integers are Pillow's.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    inv = 1.0 / filterscale
    one = float(1 << _PRECISION_BITS)
    rows = torch.zeros(out_size, in_size, dtype=torch.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = [_pil_bicubic((j - center + 0.5) * inv) for j in range(lo, hi)]
        total = 0.0
        for w in taps:
            total += w
        if total != 0.0:
            taps = [w / total for w in taps]
        rows[i, lo:hi] = torch.tensor([math.trunc(w * one + (0.5 if w >= 0 else -0.5)) for w in taps])
    return rows


def _resample_last_axis(x: Tensor, out_size: int) -> Tensor:
    """One Pillow pass along the last axis of integer-valued float64 ``x``: the fixed-point sum,
    rounded half up, clipped to 0..255 (Pillow's ``clip8``). Exact: every product and sum is an
    integer below 2**53."""
    k = _pil_coefficients(x.shape[-1], out_size).to(x.device)
    acc = x @ k.T + float(1 << (_PRECISION_BITS - 1))
    return torch.floor(acc / float(1 << _PRECISION_BITS)).clamp_(0, 255)


def pil_bicubic_resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """uint8 ``[N, C, H, W]`` -> uint8 ``[N, C, *size]``, equal to Pillow's
    ``Image.resize((w, h), Image.BICUBIC)`` of each image: the horizontal pass first, rounded to
    8 bits, then the vertical pass (Pillow's ``ImagingResampleInner``); an axis already at its size
    is left alone, as Pillow skips it."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 [N, C, H, W], got {images.dtype} {list(images.shape)}")
    out_h, out_w = size
    x = images.to(torch.float64)
    if x.shape[-1] != out_w:
        x = _resample_last_axis(x, out_w)
    if x.shape[-2] != out_h:
        x = _resample_last_axis(x.transpose(-1, -2), out_h).transpose(-1, -2)
    return x.to(torch.uint8)


def preprocess(images: Tensor) -> Tensor:
    """dgm-eval's DINOv2 input from uint8 RGB ``[N, 3, H, W]``: Pillow-bicubic resize to 224 x 224,
    ``/ 255`` (``ToTensor``), ImageNet mean/std (``Normalize``), float32 ``[N, 3, 224, 224]``."""
    x = pil_bicubic_resize(images, (INPUT_SIZE, INPUT_SIZE)).float() / 255
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


# -- the network -----------------------------------------------------------------------------------


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch`` x ``patch`` patches, each linearly embedded: ``[N, 3, H, W]`` ->
    ``[N, (H/patch) * (W/patch), dim]`` in row-major patch order."""

    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection: softmax(q k^T / sqrt(d)) v."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(n, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head width)
        return self.proj(y.transpose(1, 2).reshape(n, tokens, dim))


class Mlp(nn.Module):
    """Two linear layers with an exact GELU between them."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """A learned per-channel scale of a residual branch (Touvron et al. 2021, CaiT), ``gamma``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Block(nn.Module):
    """A pre-norm transformer block: ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DINOv2ViT(nn.Module):
    """DINOv2's vision transformer: normalised float ``[N, 3, H, W]`` (sides multiples of ``patch``)
    -> the class token after the final layer norm, ``[N, dim]``. Defaults: ViT-L/14.

    Parameter names are facebookresearch/dinov2's (``cls_token``, ``pos_embed``, ``mask_token``,
    ``patch_embed.proj``, ``blocks.<i>.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,
    ls2.gamma}``, ``norm``). ``mask_token`` serves masked-image training only; it is kept so that the
    pretrained file loads strictly.
    """

    def __init__(
        self,
        dim: int = WIDTH,
        depth: int = 24,
        heads: int = 16,
        mlp_ratio: int = 4,
        patch: int = PATCH,
        grid: int = GRID,
        interpolate_offset: float = INTERPOLATE_OFFSET,
        interpolate_antialias: bool = False,
    ) -> None:
        super().__init__()
        self.patch, self.grid = patch, grid
        self.interpolate_offset, self.interpolate_antialias = interpolate_offset, interpolate_antialias
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.patch_embed = PatchEmbed(patch, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def position_embedding(self, height: int, width: int) -> Tensor:
        """The positional embeddings ``[1, 1 + rows * cols, dim]`` of a ``height`` x ``width`` input.

        As DINOv2's ``interpolate_pos_encoding``: the stored table as it is for a square input of
        ``grid`` x ``grid`` patches; otherwise the patch part, as a ``grid`` x ``grid`` image, resized
        bicubically (``align_corners=False``, antialiasing off) by the scale factors
        ``(rows + offset) / grid`` and ``(cols + offset) / grid``, which yield ``rows`` x ``cols``
        samples (the offset guards the floor) placed at that scale, not at ``rows / grid``.
        """
        pos = self.pos_embed
        rows, cols = height // self.patch, width // self.patch
        if rows * cols == self.grid * self.grid and height == width:
            return pos
        table = pos[:, 1:].float().reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        if self.interpolate_offset:
            factors = [(rows + self.interpolate_offset) / self.grid, (cols + self.interpolate_offset) / self.grid]
            table = F.interpolate(table, scale_factor=factors, mode="bicubic", antialias=self.interpolate_antialias)
        else:
            table = F.interpolate(table, size=(rows, cols), mode="bicubic", antialias=self.interpolate_antialias)
        if tuple(table.shape[-2:]) != (rows, cols):
            raise ValueError(f"positional embeddings resized to {list(table.shape[-2:])}, not {[rows, cols]}")
        patches = table.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([pos[:, :1].float(), patches], dim=1).to(pos.dtype)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if height % self.patch or width % self.patch:
            raise ValueError(f"input {height}x{width} is not a multiple of the patch size {self.patch}")
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.position_embedding(height, width)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0]


class DINOv2Features(nn.Module):
    """uint8 RGB ``[N, 3, H, W]`` -> DINOv2 ViT-L/14 class-token features ``[N, 1024]`` float32,
    preprocessed as dgm-eval (:func:`preprocess`); always in eval mode, no gradients.

    Weights: ``dinov2_vitl14_pretrain.pth`` in ``weights_dir`` (:mod:`src.pretrained.weights`),
    loaded strictly: every tensor of the file is used and every parameter comes from it.
    ``weights_dir=None``: random initialisation (tests).
    """

    num_features = WIDTH

    def __init__(self, weights_dir: str | Path | None = None) -> None:
        super().__init__()
        self.weights_file: Path | None = None
        if weights_dir is None:
            self.net = DINOv2ViT()
        else:
            state = load_weights("dinov2_vitl14", weights_dir)
            path = weights_path("dinov2_vitl14", weights_dir)
            with torch.device("meta"):  # no initialisation: every parameter comes from the file
                self.net = DINOv2ViT()
            try:
                self.net.load_state_dict(state, strict=True, assign=True)
            except RuntimeError as e:
                raise MissingWeightsError(
                    f"{path} is not DINOv2 ViT-L/14's state dict: {' '.join(str(e).split())}"
                ) from None
            self.weights_file = path
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> DINOv2Features:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"DINOv2 expects uint8 [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        return self.net(preprocess(images)).float()


_LOADED: dict[tuple, DINOv2Features] = {}


def load_dinov2(weights_dir: str | Path) -> DINOv2Features:
    """:class:`DINOv2Features` for ``weights_dir``, built once per process and weights file (reading
    1.2 GB takes seconds); a changed file (size or mtime) is loaded again."""
    path = weights_path("dinov2_vitl14", weights_dir).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _LOADED:
        _LOADED.clear()  # keep at most one copy in memory
        _LOADED[key] = DINOv2Features(weights_dir)
    return _LOADED[key]
