"""Colorization quality on RGB in [0, 1] (ChromaGAN's and jeniasivets' PSNR), synced across processes.

Per image, averaged over images:

* ``psnr``: PSNR with peak 1 (``psnr_rgb01``, the primary metric);
* ``psnr_peak``: the same with the image's own ``max(gt)`` as peak, as jeniasivets computes it (the
  protocol behind their 23.5 / 24.5 dB on TinyImageNet; the peak is floored at 1/255 so a black
  image cannot make the mean ``-inf``);
* ``ssim``: SSIM (Gaussian 11x11, sigma 1.5, data range 1; a uniform window that fits below 11 px);
* and each of them for the **gray baseline** (ab = 0) under the same protocol, with ``_gray``
  suffixes, plus ``psnr_gain = psnr - psnr_gray``. Colorization gains over gray are small (about
  1-2 dB), so the baseline is what makes the numbers readable.

Identical images have infinite PSNR: it is reported as ``inf``, never an error. PSNR and SSIM are
torchmetrics' functional forms; this class only sums them per image and syncs the sums.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

__all__ = ["RESULT_KEYS", "ColorizationMetrics", "per_image_psnr"]

_KEYS = ("psnr", "psnr_peak", "ssim")
# Every key compute() returns when the gray baseline is given (validation always gives it).
RESULT_KEYS = (*_KEYS, *(k + "_gray" for k in _KEYS), "psnr_gain")
_MIN_PEAK = 1.0 / 255.0


def per_image_psnr(pred: Tensor, target: Tensor, peak: str = "one") -> Tensor:
    """PSNR ``[N]`` of ``[N, C, H, W]`` images in ``[0, 1]``; ``peak`` = ``one`` or ``max_gt`` (jeniasivets')."""
    psnr = peak_signal_noise_ratio(pred.float(), target.float(), data_range=1.0, reduction="none", dim=(1, 2, 3))
    if peak == "max_gt":
        top = target.float().flatten(1).amax(dim=1).clamp_min(_MIN_PEAK)
        psnr = psnr + 20.0 * torch.log10(top)
    elif peak != "one":
        raise ValueError(f"peak={peak!r}: allowed values are one, max_gt")
    return psnr


def _scores(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    side = min(pred.shape[-2:])
    gaussian = side >= 11  # torchmetrics' default window; a uniform odd one that fits below 11 px
    kernel = 11 if gaussian else (side if side % 2 else side - 1)
    ssim = structural_similarity_index_measure(
        pred.float(), target.float(), gaussian_kernel=gaussian, kernel_size=kernel, data_range=1.0, reduction="none"
    )
    assert isinstance(ssim, Tensor)  # a tuple only with return_full_image / return_contrast_sensitivity
    return {"psnr": per_image_psnr(pred, target), "psnr_peak": per_image_psnr(pred, target, "max_gt"), "ssim": ssim}


class ColorizationMetrics(Metric):
    """``update(pred, target, gray=None)`` with RGB ``[N, 3, H, W]`` in ``[0, 1]``; ``compute()`` -> dict."""

    full_state_update = False
    higher_is_better = True
    # states (add_state in __init__), float64 sums; the per-key score sums are reached by name (getattr)
    count: Tensor
    count_gray: Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for key in _KEYS:
            for suffix in ("", "_gray"):
                self.add_state(key + suffix, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count_gray", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, gray: Tensor | None = None) -> None:
        if pred.shape != target.shape or pred.ndim != 4:
            raise ValueError(
                f"pred and target must be [N, C, H, W] of one shape, got {list(pred.shape)} and {list(target.shape)}"
            )
        for key, value in _scores(pred, target).items():
            setattr(self, key, getattr(self, key) + value.double().sum())
        self.count += pred.shape[0]
        if gray is not None:
            for key, value in _scores(gray, target).items():
                setattr(self, key + "_gray", getattr(self, key + "_gray") + value.double().sum())
            self.count_gray += gray.shape[0]

    def compute(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        n = self.count.clamp_min(1)
        for key in _KEYS:
            out[key] = (getattr(self, key) / n).float()
        if self.count_gray > 0:
            g = self.count_gray
            for key in _KEYS:
                out[key + "_gray"] = (getattr(self, key + "_gray") / g).float()
            out["psnr_gain"] = out["psnr"] - out["psnr_gray"]
        return out
