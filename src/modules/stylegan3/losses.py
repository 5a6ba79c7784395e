"""What StyleGAN3's training adds to StyleGAN2's losses: the blur of the images D sees (config R) and the
input magnitude EMA's decay.

NVlabs/stylegan3 ``training/loss.py`` (``StyleGAN2Loss.run_D``): with ``blur_init_sigma > 0`` every image
the discriminator scores (generated, real, and the reals of R1) is blurred before augmentation by a
Gaussian whose sigma fades linearly from ``blur_init_sigma`` to 0 over the first ``blur_fade_kimg``
thousand images; ``train.py --cfg=stylegan3-r`` sets sigma 10 over ``batch * 200 / 32`` kimg (Karras et al.
2021, section 4: it keeps D from relying on the high frequencies early on). The kernel is NVIDIA's:
``2 ** (-(x / sigma)**2)`` on ``x = -floor(3 sigma) .. floor(3 sigma)``, normalised to sum 1, applied along
both axes with zero padding (``upfirdn2d.filter2d``).

``magnitude_ema_beta``: ``train.py`` sets ``0.5 ** (batch / 20000)``, a half-life of 20k images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from src.augment.hue import circular_hue

#: images (thousands) over which the input magnitude EMA halves, NVIDIA's train.py: 0.5 ** (batch / 20e3)
MAGNITUDE_EMA_KIMG = 20.0


def blur_sigma(cur_nimg: int, init_sigma: float, fade_kimg: float) -> float:
    """The sigma (pixels) of the blur D's images get after ``cur_nimg`` images: ``init_sigma`` fading
    linearly to 0 at ``fade_kimg`` thousand images; 0 when ``fade_kimg <= 0`` (NVIDIA's rule)."""
    if fade_kimg <= 0 or init_sigma <= 0:
        return 0.0
    return max(1.0 - cur_nimg / (fade_kimg * 1e3), 0.0) * init_sigma


def blur_kernel(sigma: float, device: torch.device | None = None) -> Tensor:
    """NVIDIA's 1-D blur taps ``2 ** (-(x / sigma)**2)``, ``|x| <= floor(3 sigma)``, summing to 1 (float32)."""
    size = math.floor(sigma * 3)
    x = torch.arange(-size, size + 1, device=device, dtype=torch.float32)
    f = x.div(sigma).square().neg().exp2()
    return f / f.sum()


def gaussian_blur(images: Tensor, sigma: float, hue_channel: int | None = None) -> Tensor:
    """``images`` [N, C, H, W] blurred along both axes (zero padding, same size); unchanged when
    ``floor(3 sigma) == 0``. ``hue_channel``: a channel holding hue as an angle is blurred as one
    (its unit vector, :func:`src.augment.hue.circular_hue`), so a red stays red."""
    if math.floor(sigma * 3) <= 0:
        return images

    def separable(x: Tensor) -> Tensor:
        f = blur_kernel(sigma, x.device).to(x.dtype)
        c, pad = x.shape[1], (f.numel() - 1) // 2
        x = F.conv2d(x, f.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, pad), groups=c)
        return F.conv2d(x, f.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(pad, 0), groups=c)

    if hue_channel is None:
        return separable(images)
    return circular_hue(separable, images, hue_channel)


def magnitude_ema_beta(global_batch: int, kimg: float = MAGNITUDE_EMA_KIMG) -> float:
    """The input magnitude EMA's decay per iteration of ``global_batch`` images: ``0.5 ** (batch / (kimg * 1000))``."""
    return 0.5 ** (global_batch / (kimg * 1e3))
