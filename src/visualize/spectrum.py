"""Average power spectrum of images (NVlabs/stylegan3 ``avg_spectra.py``): where a generator aliases.

Karras et al. 2021 (Alias-Free GANs, figure 1 and appendix) compare the power spectra of generated and
real images: aliasing shows as energy where the training data has none, e.g. a grid of peaks at
multiples of the intermediate sampling rates. As ``avg_spectra.py calc`` computes it, every uint8 image
``x`` ``[C, H, W]`` is whitened with a data set's mean and standard deviation over all pixel values
(``avg_spectra.py stats``), multiplied by a separable Kaiser window (``beta`` 8; each 1-D window scaled to
unit energy), zero-padded to ``interp`` (4) times its size and Fourier-transformed; the power ``|F|^2``
is averaged over channels and images. ``construct_heatmap`` shows it in dB (``10 log10``), centred
(``fftshift``) with the first row and column repeated at the end, smoothed by a Gaussian of
``interp * smooth`` bins; ``heatmap`` draws it as filled contours from -40 to 20 dB and ``slices`` the
0-degree (horizontal) and 45-degree (diagonal) rays from the centre.

:class:`SpectrumAccumulator` takes the images in one pass, before the mean and standard deviation are
known: it keeps ``sum |X|^2`` and ``sum X`` of the windowed, padded, unwhitened images and the pixel
moments; since the transform is linear, the whitened spectrum is
``(E|X|^2 - 2 m Re(E[X] conj W) + m^2 |W|^2) / s^2`` with ``W`` the window's transform, exactly (float64).
Non-square images work too: the window is the product of one Kaiser window per axis, and the second
slice is the vertical one where a diagonal has no meaning.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from src.utils.io import atomic_write

__all__ = [
    "Spectrum",
    "SpectrumAccumulator",
    "heatmap_db",
    "kaiser_window_2d",
    "load_spectrum",
    "plot_heatmap",
    "plot_slices",
    "save_spectrum",
]

HEATMAP_LEVELS = np.linspace(-40, 20, num=13)  # dB, avg_spectra.py heatmap's contour levels
SLICE_TICKS = np.linspace(-50, 30, num=9)  # dB, avg_spectra.py slices' y axis


def kaiser_window_2d(height: int, width: int, beta: float = 8.0) -> Tensor:
    """float64 ``[height, width]``: the outer product of two symmetric Kaiser windows, each scaled to unit
    energy (``avg_spectra.py``: ``window *= window.square().sum().rsqrt()``, then ``window.ger(window)``)."""

    def one(n: int) -> Tensor:
        w = torch.kaiser_window(n, periodic=False, beta=float(beta), dtype=torch.float64)
        return w * w.square().sum().rsqrt()

    return torch.outer(one(height), one(width))


@dataclass
class Spectrum:
    """An average power spectrum: ``power`` float64 ``[H * interp, W * interp]`` (unshifted, DC at [0, 0]),
    the images' size ``(H, W)``, how many images, and the whitening ``mean`` / ``std`` used."""

    power: np.ndarray
    image_size: tuple[int, int]
    num: int
    mean: float
    std: float


class SpectrumAccumulator:
    """Adds batches of uint8 images ``[N, C, H, W]`` (:meth:`add`); :meth:`spectrum` whitens with any mean
    and standard deviation afterwards, by default the images' own (``avg_spectra.py stats``)."""

    def __init__(self, image_size: tuple[int, int], interp: int = 4, beta: float = 8.0) -> None:
        if interp < 1:
            raise ValueError(f"interp={interp}: must be at least 1")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        h, w = self.image_size
        self.spectrum_size = (h * int(interp), w * int(interp))
        self.window = kaiser_window_2d(h, w, beta)
        self.window_fft = self._fft(self.window)
        self.power_sum = torch.zeros(self.spectrum_size, dtype=torch.float64)  # sum over images, channels of |X|^2
        self.fft_sum = torch.zeros(self.spectrum_size, dtype=torch.complex128)  # ... of X
        self.count = 0  # images x channels
        self.num = 0  # images
        self.moments = torch.zeros(3, dtype=torch.float64)  # pixel count, sum, sum of squares

    def _fft(self, x: Tensor) -> Tensor:
        h, w = self.image_size
        ph, pw = self.spectrum_size
        return torch.fft.fftn(torch.nn.functional.pad(x, [0, pw - w, 0, ph - h]), dim=[-2, -1])

    def add(self, images: Tensor) -> None:
        if images.ndim != 4 or tuple(images.shape[2:]) != self.image_size:
            raise ValueError(
                f"expected images [N, C, {self.image_size[0]}, {self.image_size[1]}], got {list(images.shape)}"
            )
        x = images.detach().cpu().to(torch.float64)
        self.moments += torch.stack([torch.tensor(float(x.numel()), dtype=torch.float64), x.sum(), x.square().sum()])
        f = self._fft(x * self.window)
        self.power_sum += f.abs().square().sum(dim=(0, 1))
        self.fft_sum += f.sum(dim=(0, 1))
        self.count += x.shape[0] * x.shape[1]
        self.num += x.shape[0]

    def stats(self) -> tuple[float, float]:
        """Mean and standard deviation over every pixel value added (``avg_spectra.py stats``)."""
        if self.num == 0:
            raise ValueError("no images were added")
        n, s1, s2 = (float(v) for v in self.moments)
        mean = s1 / n
        return mean, math.sqrt(max(s2 / n - mean * mean, 0.0))

    def spectrum(self, mean: float | None = None, std: float | None = None) -> Spectrum:
        """The average power of ``(x - mean) / std`` windowed and padded; ``None``: the images' own stats."""
        own_mean, own_std = self.stats()
        m = own_mean if mean is None else float(mean)
        s = own_std if std is None else float(std)
        if not s > 0:
            raise ValueError(f"std={s}: whitening needs a positive standard deviation")
        p, q = self.power_sum / self.count, self.fft_sum / self.count
        cross = (q * self.window_fft.conj()).real
        power = (p - 2 * m * cross + m * m * self.window_fft.abs().square()) / (s * s)
        return Spectrum(power.clamp_min(0).numpy(), self.image_size, self.num, m, s)


def save_spectrum(spectrum: Spectrum, path: str | Path) -> Path:
    """``.npz`` with ``avg_spectra.py``'s keys (``spectrum``, ``image_size``: an int for square images, so
    its ``heatmap`` and ``slices`` commands read the file) and ``image_hw``, ``num``, ``mean``, ``std``."""
    h, w = spectrum.image_size
    buf = io.BytesIO()
    np.savez(
        buf,
        spectrum=spectrum.power,
        image_size=np.int64(h) if h == w else np.array([h, w], dtype=np.int64),
        image_hw=np.array([h, w], dtype=np.int64),
        num=np.int64(spectrum.num),
        mean=np.float64(spectrum.mean),
        std=np.float64(spectrum.std),
    )
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def load_spectrum(path: str | Path) -> Spectrum:
    """A spectrum ``.npz`` written by :func:`save_spectrum` or by ``avg_spectra.py calc``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"npz={str(path)!r}: no such spectrum file")
    with np.load(path) as data:
        if "spectrum" not in data or "image_size" not in data:
            raise ValueError(f"npz={str(path)!r}: not an average-spectrum file (needs 'spectrum' and 'image_size')")
        size = np.atleast_1d(data["image_hw"] if "image_hw" in data else data["image_size"]).astype(int)
        hw = (int(size[0]), int(size[-1]))
        num = int(data["num"]) if "num" in data else 0
        mean = float(data["mean"]) if "mean" in data else float("nan")
        std = float(data["std"]) if "std" in data else float("nan")
        return Spectrum(np.asarray(data["spectrum"], dtype=np.float64), hw, num, mean, std)


def heatmap_db(spectrum: Spectrum, smooth: float = 0.0) -> np.ndarray:
    """``avg_spectra.py construct_heatmap``: dB, centred, first row and column repeated at the end
    (``[H * interp + 1, W * interp + 1]``), Gaussian-smoothed by ``interp * smooth`` bins per axis."""
    hmap = np.fft.fftshift(np.log10(np.maximum(spectrum.power, 1e-30)) * 10)
    hmap = np.concatenate([hmap, hmap[:1, :]], axis=0)
    hmap = np.concatenate([hmap, hmap[:, :1]], axis=1)
    if smooth > 0:
        import scipy.ndimage

        sigma = [
            spectrum.power.shape[0] / spectrum.image_size[0] * smooth,
            spectrum.power.shape[1] / spectrum.image_size[1] * smooth,
        ]
        hmap = scipy.ndimage.gaussian_filter(hmap, sigma=sigma, mode="nearest")
    return hmap


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: str | Path) -> Path:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def plot_heatmap(spectrum: Spectrum, path: str | Path, smooth: float = 1.25, dpi: float = 100, title: str = "") -> Path:
    """``avg_spectra.py heatmap``: filled contours of the dB heatmap over frequency (cycles per image,
    -size/2 .. size/2 on each axis), levels -40 .. 20 dB, as a PNG."""
    plt = _pyplot()
    hmap = heatmap_db(spectrum, smooth)
    h, w = spectrum.image_size
    fy = np.linspace(-0.5, 0.5, num=hmap.shape[0], endpoint=True) * h
    fx = np.linspace(-0.5, 0.5, num=hmap.shape[1], endpoint=True) * w
    fig = plt.figure(figsize=[6, 4.8], dpi=dpi, tight_layout=True)
    ax = fig.gca()
    ax.set_xlim(fx[0], fx[-1])
    ax.set_ylim(fy[0], fy[-1])
    ax.set_xticks(np.linspace(fx[0], fx[-1], num=5))
    ax.set_yticks(np.linspace(fy[0], fy[-1], num=5))
    filled = ax.contourf(fx, fy, hmap, levels=HEATMAP_LEVELS, extend="both", cmap="Blues")
    ax.set_aspect("equal")
    fig.colorbar(filled, ticks=HEATMAP_LEVELS)
    ax.contour(fx, fy, hmap, levels=HEATMAP_LEVELS, extend="both", linestyles="solid", linewidths=1,
               colors="midnightblue", alpha=0.2)  # fmt: skip
    if title:
        ax.set_title(title)
    return _save_figure(fig, path)


def slice_curves(spectrum: Spectrum, smooth: float = 0.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{title: (frequencies, dB)}``: the 0-degree ray from the centre of the heatmap (horizontal, 0 ..
    W/2 cycles) and the 45-degree one (0 .. H/sqrt(2)) for square images, the 90-degree one otherwise."""
    hmap = heatmap_db(spectrum, smooth)
    ch, cw = hmap.shape[0] // 2, hmap.shape[1] // 2
    h, w = spectrum.image_size
    curves = {"0\u00b0 slice": (np.linspace(0, w / 2, num=hmap.shape[1] - cw), hmap[ch, cw:])}
    if hmap.shape[0] == hmap.shape[1]:
        diag = np.arange(ch, hmap.shape[0])
        curves["45\u00b0 slice"] = (np.linspace(0, h / np.sqrt(2), num=len(diag)), hmap[diag, diag])
    else:
        curves["90\u00b0 slice"] = (np.linspace(0, h / 2, num=hmap.shape[0] - ch), hmap[ch:, cw])
    return curves


def plot_slices(
    spectra: Sequence[tuple[str, Spectrum]], path: str | Path, smooth: float = 0.0, dpi: float = 100
) -> Path:
    """``avg_spectra.py slices``: the slices (:func:`slice_curves`) of each labelled spectrum, side by side,
    as a PNG. All spectra must have the same image size and ``interp``."""
    if not spectra:
        raise ValueError("no spectra to plot")
    shape, size = spectra[0][1].power.shape, spectra[0][1].image_size
    for label, s in spectra:
        if s.power.shape != shape or s.image_size != size:
            raise ValueError(
                f"{label}: spectrum of {s.image_size} images ({list(s.power.shape)} bins) cannot share a plot with "
                f"{spectra[0][0]}'s {size} ({list(shape)}): every spectrum needs the same size and interp"
            )
    plt = _pyplot()
    curves = [(label, slice_curves(s, smooth)) for label, s in spectra]
    fig = plt.figure(figsize=[12, 4.6], dpi=dpi, tight_layout=True)
    for k, title in enumerate(curves[0][1]):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.set_title(title)
        freqs = curves[0][1][title][0]
        ax.set_xlim(freqs[0], freqs[-1])
        ax.set_ylim(SLICE_TICKS[0], SLICE_TICKS[-1])
        ax.set_xticks(np.round(np.linspace(freqs[0], freqs[-1], num=9), 2))
        ax.set_yticks(SLICE_TICKS)
        for label, c in curves:
            ax.plot(*c[title], label=label)
        ax.grid()
        ax.legend(loc="upper right")
    return _save_figure(fig, path)


# ----------------------------------------------------------------------------------------------
# Image sources: a generator's images for consecutive seeds, a data set's reals.


def to_uint8(rgb: Tensor) -> Tensor:
    """Display RGB in [0, 1] -> uint8, rounded as the PNGs are written (``src.utils.io.image_grid``); for
    RGB models the same as NVIDIA's ``(G(z) * 127.5 + 128).clamp(0, 255).to(torch.uint8)``."""
    return (rgb.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def generated_batches(
    model, seeds: Sequence[int], psi: float = 1.0, class_idx: int | None = None, noise_mode: str = "const",
    batch: int = 16,
) -> Iterator[Tensor]:  # fmt: skip
    """uint8 RGB ``[n, C, H, W]`` of ``model``'s generator for ``seeds`` (z as ``generate.py`` draws them,
    classes as ``labels_for``), ``batch`` at a time; RGBA models give their colour channels."""
    from src.latents.seeds import seed_latents

    for i in range(0, len(seeds), batch):
        chunk = list(seeds[i : i + batch])
        z, _ = seed_latents(chunk, model.G.z_dim)
        labels = model.labels_for(len(chunk), class_idx, seeds=chunk)
        images = model.sample(z.to(model.device), labels, psi=psi, noise_mode=noise_mode)
        yield to_uint8(model.colorspace.decode(images)[:, :3]).cpu()


def real_batches(
    root: str | Path, resolution: tuple[int, int] | None = None, num: int | None = None, batch: int = 64
) -> tuple[int, tuple[int, int], Iterator[Tensor]]:
    """``(images, (H, W), uint8 RGB batches)`` of a folder or zip of images, read as training reads them
    (:class:`~src.datamodules.readers.ImageFolderDataset`): center-cropped and resized to ``resolution``
    (default: the first image's size); ``num`` keeps a subset drawn with seed 0, in file order (the
    subset stylegan2-ada's ``--max-size`` and ``avg_spectra.py --num`` take)."""
    from src.datamodules.readers import ImageFolderDataset, decode_image, open_source

    if resolution is None:
        source = open_source(root)
        first = decode_image(source.read(0), 3, None, name=source.name(0))
        resolution = (int(first.shape[1]), int(first.shape[2]))
    data = ImageFolderDataset(root, resolution=list(resolution), channels=3, max_images=num)
    if num is not None and len(data) < num:
        raise ValueError(f"data={str(root)!r} holds {len(data)} images, fewer than num={num}")

    def batches() -> Iterator[Tensor]:
        for i in range(0, len(data), batch):
            yield torch.stack([data[j]["image"] for j in range(i, min(i + batch, len(data)))])

    return len(data), data.resolution, batches()
