"""The explorer's server functions: one method per view, each a thin call into the functions the CLI
tools use (``src.visualize``, SEGAN's ``traversal`` through :mod:`src.explorer.segan`, ChromaGAN's
``colorize_rgb``, the ``Projector``).

Every method returns what the page shows (uint8 ``[H, W, C]`` grids, tables, files in the workspace)
and raises ``ValueError`` with a message for the person at the page on bad input. The mapping
network's outputs are cached per (seeds, class) before truncation, so moving ψ, the cutoff or the
noise mode only runs the synthesis network. One lock serialises the views that use the loaded
generator (the layer view hooks its blocks and the noise view swaps its noise maps); videos render on
a copy and projections on the projector's own copy, so the sliders stay live while they run.
"""

from __future__ import annotations

import copy
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from src.checkpoints.load import InferenceModel, load_for_views
from src.explorer import segan
from src.latents.files import Latents, save_latents
from src.latents.seeds import parse_seeds, seed_latents
from src.latents.truncation import truncate
from src.modules.base import GANModule
from src.nn.input_transform import transformed
from src.nn.style_generator import StyleGenerator
from src.projection.projector import Projector, ProjectorConfig
from src.projection.targets import load_target
from src.utils.io import image_grid
from src.visualize.latent_paths import SPACES, lerp, slerp
from src.visualize.layers import layer_view_grid, skip_blocks
from src.visualize.noise import noise_variants, noise_view_grid
from src.visualize.render import render_rgb, seeds_to_w
from src.visualize.style_mixing import parse_layers, style_mixing_grid

NOISE_MODES = ("const", "random", "none")
MAX_SEEDS = 64  # per grid: a typo like 0-99999 gets a message, not an hour of CPU


class Cancelled(Exception):
    """A long job (projection, video) stopped by the Cancel button."""


@dataclass
class ProjectionUpdate:
    """One step of :meth:`Explorer.project` as the page shows it."""

    step: int
    steps: int
    lpips: float
    image: np.ndarray | None = None  # target | current projection, uint8
    latents: Path | None = None  # the latent file (last update only)
    metrics: dict = field(default_factory=dict)  # the projector's figures (last update only)


@runtime_checkable
class RGBColorizer(Protocol):
    """A colorization model the page hands photos to (ChromaGAN's module): ``colorize_rgb(rgb)`` takes
    RGB ``[N, 3, H, W]`` in [0, 1] and returns ``(colorized, gray)`` RGB in [0, 1]."""

    def colorize_rgb(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class Explorer:
    """The views over one generator (:class:`InferenceModel`) or one colorization module.

    ``workspace``: the folder every file the explorer writes goes to (uploads, videos, latent files);
    the server removes it at exit. ``lpips``: the projector's distance (loaded from ``weights_dir`` on
    the first projection when None). ``stats_n``: latents behind SEGAN's σ units (traverse.py's
    ``stats_n``).
    """

    def __init__(
        self,
        model: InferenceModel | GANModule,
        workspace: str | Path,
        lpips: torch.nn.Module | None = None,
        weights_dir: str | Path | None = None,
        stats_n: int = 10_000,
    ) -> None:
        self.model = model
        self.workspace = Path(workspace)
        self.colorizes = model.colorizes
        self.segan = not self.colorizes and segan.is_segan(model.G)
        self._lpips, self.weights_dir, self.stats_n = lpips, weights_dir, int(stats_n)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._ws_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._stats: dict = {}
        self._video_model: InferenceModel | None = None

    @property
    def _inference(self) -> InferenceModel:
        """The model the generator views read (:func:`load_for_views` gives one unless ``colorizes``)."""
        assert isinstance(self.model, InferenceModel), f"{type(self.model).__name__} has no generator views"
        return self.model

    @property
    def _g(self) -> StyleGenerator:
        """The loaded generator."""
        return self._inference.G

    @classmethod
    def open(cls, path: str | Path, workspace: str | Path, device: str = "cpu", **kwargs) -> Explorer:
        """Load any file the tools read (a gamut ``.ckpt``, imports included, or a ``.safetensors``
        export) in fp32, the generator in channels-last like the CLI tools."""
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={device!r}: CUDA is not available here; use device=cpu")
        return cls(load_for_views(path, device, channels_last=True), workspace, **kwargs)

    # ------------------------------------------------------------------------------------------
    # What the page needs to know to lay itself out.

    def describe(self) -> dict:
        if self.colorizes:
            c = self.model
            assert isinstance(c, GANModule), "load_for_views gives a colorization model as its module"
            return {"family": type(c).__name__, "resolution": list(c.resolution), "colorspace": c.colorspace.name}
        m, g = self._inference, self._g
        info = {
            "generator": type(g).__name__,
            "file": m.source.name,
            "resolution": [int(s) for s in g.resolution],
            "colorspace": m.colorspace.name,
            "num_ws": int(g.num_ws),
            "classes": m.num_classes,
            "noise_layers": len(self._noise_names()),
            # the seed grid's translate/rotate sliders (the synthesis samples a continuous input)
            "input_transform": bool(g.synthesis.supports_input_transform),
            # the layer view: ToRGB contributions of a skip network, or each layer's activation
            "layer_view": "torgb" if skip_blocks(g.synthesis) is not None else "activations",
        }
        if self.segan:
            info |= segan.layout(g)
        return info

    def _noise_names(self) -> list[str]:
        from src.latents.files import noise_layers

        return list(noise_layers(self._g))

    # ------------------------------------------------------------------------------------------
    # Latents.

    def _seeds(self, value, key: str = "seeds") -> list[int]:
        try:
            seeds = parse_seeds(str(value))
        except ValueError:
            raise ValueError(f"{key}={value!r}: expected e.g. 0-7 or 1,5,9") from None
        if len(seeds) > MAX_SEEDS:
            raise ValueError(f"{key}={value!r}: {len(seeds)} seeds; at most {MAX_SEEDS} per view")
        return seeds

    def _class(self, class_idx) -> int | None:
        return None if class_idx in (None, "", "data") else int(class_idx)

    def ws(self, seeds: list[int], psi: float = 1.0, cutoff: int | None = None, class_idx=None) -> torch.Tensor:
        """``seeds_to_w(model, seeds, psi, cutoff, class_idx)``, mapping each (seeds, class) once.

        The mapping network truncates last (``truncate(ws, w_avg, psi, cutoff)``), so truncating the
        cached untruncated codes gives the same tensor."""
        key = (tuple(seeds), self._class(class_idx))
        raw = self._ws_cache.get(key)
        if raw is None:
            raw = seeds_to_w(self.model, seeds, 1.0, None, class_idx=key[1])
            self._ws_cache[key] = raw
            while len(self._ws_cache) > 64:
                self._ws_cache.popitem(last=False)
        self._ws_cache.move_to_end(key)
        cut = None if cutoff is None or int(cutoff) >= raw.shape[1] else int(cutoff)
        return truncate(raw, self._g.mapping.w_avg, float(psi), cut)

    @staticmethod
    def _noise_mode(value: str) -> str:
        if value not in NOISE_MODES:
            raise ValueError(f"noise_mode={value!r}: choose one of {', '.join(NOISE_MODES)}")
        return value

    # ------------------------------------------------------------------------------------------
    # Views of a generator (the images generate.py and visualize.py write).

    def seed_grid(
        self, seeds="0-7", psi=1.0, cutoff=None, noise_mode="const", class_idx=None, translate_x=0.0, translate_y=0.0,
        rotate=0.0,
    ) -> np.ndarray:  # fmt: skip
        """The seeds' images in a near-square grid (each cell is generate.py's ``seed####.png``), moved by
        ``(translate_x, translate_y)`` and turned by ``rotate`` degrees as ``generate.py translate= rotate=``
        does (generators with an input transform: ``describe()["input_transform"]``)."""
        seeds = self._seeds(seeds)
        with self._lock:
            ws = self.ws(seeds, psi, cutoff, class_idx)
            with transformed(self._g.synthesis, (float(translate_x), float(translate_y)), float(rotate)):
                images = render_rgb(self.model, ws, self._noise_mode(noise_mode))
        return image_grid(images, nrow=math.ceil(math.sqrt(len(seeds))))

    def style_mixing(self, rows="0-3", cols="10-13", layers="0-3", psi=1.0, noise_mode="const", class_idx=None):
        """visualize.py mix: the row seeds' codes with the column seeds' codes in ``layers``."""
        row_seeds, col_seeds = self._seeds(rows, "rows"), self._seeds(cols, "cols")
        idx = parse_layers(layers, self._g.num_ws)
        with self._lock:
            row_ws, col_ws = self.ws(row_seeds, psi, None, class_idx), self.ws(col_seeds, psi, None, class_idx)
            images, ncol = style_mixing_grid(self.model, row_ws, col_ws, idx, self._noise_mode(noise_mode))
        return image_grid(images, nrow=ncol)

    def interpolation_frame(self, seed_a=0, seed_b=1, t=0.0, space="w", psi=1.0, noise_mode="const", class_idx=None):
        """The image a fraction ``t`` of the way from seed a to seed b: frame ``t * frames`` of
        visualize.py interp ``seeds=a,b loop=false`` (lerp of the truncated ws in W, slerp of z in Z)."""
        if space not in SPACES:
            raise ValueError(f"space={space!r}: choose one of {', '.join(SPACES)}")
        t = torch.tensor([float(t)])
        seeds = [int(seed_a), int(seed_b)]
        with self._lock:
            c = self._inference.labels_for(1, self._class(class_idx), seeds=seeds[:1])  # seed a's class for the walk
            if space == "w":
                keys = self.ws(seeds, psi, None, None if c is None else int(c[0].argmax()))
                ws = lerp(keys[0], keys[1], t)
            else:
                z, _ = seed_latents(seeds, self._g.z_dim)
                with torch.no_grad():
                    ws = self._g.mapping(slerp(z[0], z[1], t).to(self._inference.device), c, psi=float(psi))
            images = render_rgb(self.model, ws, self._noise_mode(noise_mode))
        return image_grid(images)

    def interpolation_video(
        self, seeds="0-3", frames=60, space="w", psi=1.0, noise_mode="const", class_idx=None, fmt="mp4", fps=30,
        progress: Callable[[int, int], None] | None = None,
    ) -> Path:  # fmt: skip
        """visualize.py interp (one cell, looping) written to the workspace; cancellable."""
        from src.visualize.interpolation import interpolation_frames
        from src.visualize.video import write_video

        if fmt not in ("mp4", "gif"):
            raise ValueError(f"format={fmt!r}: choose mp4 or gif")
        seeds = self._seeds(seeds)
        if self._video_model is None:  # its own copy: the sliders keep the loaded generator meanwhile
            self._video_model = copy.copy(self._inference)
            self._video_model.G = copy.deepcopy(self._inference.G)
        self._cancel.clear()

        def step(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise Cancelled("video cancelled")
            if progress is not None:
                progress(done, total)

        video = interpolation_frames(
            self._video_model, seeds, int(frames), space, (1, 1), float(psi), self._noise_mode(noise_mode), True,
            self._class(class_idx), progress=step,
        )  # fmt: skip
        scale = max(1, 256 // max(video[0].shape[:2]))
        return write_video(video, self.workspace / "videos" / f"interp_{'-'.join(map(str, seeds))}.{fmt}", fps, scale)

    def layers(self, seed=0, psi=1.0, noise_mode="const", class_idx=None, channel=0) -> np.ndarray:
        """visualize.py layers: each ToRGB's contribution above the image after each block, or (a network
        without ToRGB blocks) each layer's activation from ``channel`` on."""
        with self._lock:
            ws = self.ws([int(seed)], psi, None, class_idx)
            images, ncol = layer_view_grid(self.model, ws, self._noise_mode(noise_mode), int(channel))
        return image_grid(images, nrow=ncol)

    def noise(self, seed=0, psi=1.0, variants=4, noise_seed=0, class_idx=None) -> np.ndarray:
        """visualize.py noise: each noise layer resampled alone, with the std map (one row per layer)."""
        with self._lock:
            ws = self.ws([int(seed)], psi, None, class_idx)
            rows = noise_variants(self.model, ws, int(variants), int(noise_seed))
        images, ncol = noise_view_grid(rows)
        return image_grid(images, nrow=ncol)

    # ------------------------------------------------------------------------------------------
    # SEGAN (traverse.py).

    def subspace_table(self) -> list[list]:
        """traverse.py ``table=true``: one row per subspace (:data:`SUBSPACE_COLUMNS`)."""
        return segan.table(self._g)

    def coord_stats(self, class_idx=None):
        """Mean and std of the coordinates (σ units), over the classes the seeds are drawn from."""
        key = self._class(class_idx)
        if key not in self._stats:
            c = self._inference.labels_for(self.stats_n, key)
            self._stats[key] = segan.coord_stats(self._g, self.stats_n, c)
        return self._stats[key]

    def segan_edit(
        self, seed=0, layer=0, subspace=0, dim=0, value=0.0, op="add", units="sigma", noise_mode="const", class_idx=None
    ) -> np.ndarray:
        """traverse.py with one seed and one value: coordinate (layer, subspace, dim) moved by ``value``."""
        if not self.segan:
            raise ValueError(f"{self._inference.source.name} is not a SEGAN generator")
        model, g = self._inference, self._g
        layer, subspace, dim = int(layer), int(subspace), int(dim)
        segan.check_edit(g, layer, subspace, dim, op, units)
        seeds = [int(seed)]
        with self._lock:
            z, coords = segan.latents(g, seeds)
            z = z.to(model.device)
            coords = None if coords is None else coords.to(model.device)
            labels = model.labels_for(1, self._class(class_idx), seeds=seeds)
            stats = self.coord_stats(class_idx) if units == "sigma" and op != "scale" else None
            ws = self.ws(seeds, 1.0, None, class_idx)  # the cached mapping of z (traverse's psi is 1)
            images = segan.edited_images(
                g, z, (layer, subspace, dim), value, op, units, stats, coords, self._noise_mode(noise_mode), labels, ws
            )
        return image_grid(self.model.colorspace.decode(images))

    def subspaces_of(self, layer: int) -> int:
        return segan.subspaces_in(self._g, layer)

    # ------------------------------------------------------------------------------------------
    # ChromaGAN (colorize.py).

    def colorize(self, path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float | None]:
        """An uploaded photo -> (gray input, colorization, original or None for a gray photo, PSNR in dB
        against the original or None)."""
        from src.metrics.colorization import per_image_psnr

        if not self.colorizes:
            raise ValueError("this model is not a colorization model")
        assert isinstance(self.model, RGBColorizer), f"{type(self.model).__name__} has no colorize_rgb"
        rgb = read_upload(path)
        with self._lock:
            colorized, gray = self.model.colorize_rgb(rgb)
        colorized, gray = colorized.cpu(), gray.cpu()
        has_color = not (torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 1], rgb[:, 2]))
        original = image_grid(rgb) if has_color else None
        db = float(per_image_psnr(colorized.clamp(0, 1), rgb)[0]) if has_color else None
        return image_grid(gray), image_grid(colorized), original, db

    # ------------------------------------------------------------------------------------------
    # Projection (project.py).

    def lpips(self) -> torch.nn.Module:
        if self._lpips is None:
            from src.metrics.lpips import LPIPS

            if self.weights_dir is None:
                raise ValueError("projection needs LPIPS: give the explorer lpips= or weights_dir=")
            self._lpips = LPIPS.from_weights_dir(self.weights_dir)
        return self._lpips

    def projection_target(self, path: str | Path) -> tuple[np.ndarray, list[str]]:
        """The upload as the projector sees it (the model's size and color space) and the notes."""
        check_upload(path)
        target = load_target(Path(path), self._g.resolution, self.model.colorspace, key="upload")
        return image_grid(target.rgb[None]), target.notes

    def project(self, path: str | Path, mode="w", steps=1000, class_idx=None, **options) -> Iterator[ProjectionUpdate]:
        """project.py on one uploaded target: yields an update every ``frame_every`` steps and a last one
        with the latent file (``latents.safetensors`` in the workspace) and the projector's figures
        (LPIPS, PSNR, ``w_avg_distance``, ``layer_spread``). Cancellable between steps."""
        import queue

        check_upload(path)
        model, g = self._inference, self._g
        cfg = ProjectorConfig(mode=mode, steps=int(steps), **options)
        target = load_target(Path(path), g.resolution, model.colorspace, key="upload")
        c = model.labels_for(1, self._class(class_idx))
        projector = Projector(g, model.colorspace, self.lpips(), cfg, c)
        self._cancel.clear()
        updates: queue.Queue = queue.Queue()

        def callback(step: int, record: dict) -> None:
            if self._cancel.is_set():
                raise Cancelled("projection cancelled")
            if "frame" in record:
                updates.put(("frame", step, record["lpips"], record["frame"]))

        def work() -> None:
            try:
                updates.put(("done", projector.project(target.rgb[None], callback=callback)))
            except BaseException as e:  # handed to the page
                updates.put(("error", e))

        threading.Thread(target=work, name="gamut-explore-projection", daemon=True).start()
        while True:
            item = updates.get()
            if item[0] == "error":
                raise item[1]
            if item[0] == "frame":
                _, step, lpips, frame = item
                yield ProjectionUpdate(step, cfg.steps, lpips, image_grid(torch.cat([target.rgb[None], frame]), nrow=2))
                continue
            result = item[1]
            out = self.workspace / "projections" / target.name
            info = {"names": [target.name], **result.latents.info}
            latents = Latents(result.latents.ws, result.latents.noise, info)
            saved = save_latents(out / "latents.safetensors", latents, g)
            final = image_grid(torch.cat([target.rgb[None], result.images]), nrow=2)
            yield ProjectionUpdate(cfg.steps, cfg.steps, result.metrics[0]["lpips"], final, saved, result.metrics[0])
            return

    def cancel(self) -> None:
        """Stop the running projection or video at its next step."""
        self._cancel.set()


# ----------------------------------------------------------------------------------------------
# Uploads: size-checked, decoded by the training data's reader.

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def check_upload(path: str | Path, limit: int = MAX_UPLOAD_BYTES) -> Path:
    path = Path(path)
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"{path.name}: {size / 2**20:.1f} MB; uploads are limited to {limit / 2**20:.0f} MB")
    return path


def read_upload(path: str | Path, limit: int = MAX_UPLOAD_BYTES) -> torch.Tensor:
    """An uploaded image -> RGB ``[1, 3, H, W]`` in [0, 1] at its own size, read by
    :func:`src.datamodules.readers.decode_image` (ValueError naming the file when it is not an image)."""
    from src.datamodules.readers import decode_image

    path = check_upload(path, limit)
    pixels = decode_image(path.read_bytes(), 3, None, name=path.name)
    return (pixels.float() / 255.0)[None]
