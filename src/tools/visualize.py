"""Views of a generator (issue 7; like stylegan3's tools). One subcommand per view:

    python scripts/visualize.py mix      ckpt=PATH rows=0-3 cols=10-13 layers=0-3 out=DIR
    python scripts/visualize.py interp   ckpt=PATH seeds=0-3 space=w frames=60 grid=[1,1] formats=[mp4,gif] out=DIR
    python scripts/visualize.py layers   ckpt=PATH seeds=0-1 out=DIR        (or latents=FILE)
    python scripts/visualize.py transform ckpt=PATH seeds=0-3 frames=120 rotate_to=360 out=DIR
    python scripts/visualize.py spectrum ckpt=PATH data=DIR_OR_ZIP num=1000 out=DIR   (or npz=[A.npz,B.npz])
    python scripts/visualize.py noise    ckpt=PATH seed=0 variants=4 out=DIR (or latents=FILE)
    python scripts/visualize.py progress run=logs/quickstart/RUN fps=4 out=DIR
    python scripts/visualize.py dscores  run=logs/quickstart/RUN out=DIR
    python scripts/visualize.py augment  runs=[logs/train/RUN_A,logs/train/RUN_B] out=DIR

Common keys: ``ckpt`` (a gamut .ckpt or an exported .safetensors), ``device`` (cpu|cuda; fp32),
``trunc`` (psi), ``noise_mode`` (const|random|none), ``class_idx``, ``out``. ``mix``: row seeds' codes
with the column seeds' codes in ``layers`` (w indices, e.g. ``0-3`` coarse, ``4-7`` middle) ->
``mix.png`` (rows may also come from ``latents=FILE``). ``interp``: a looping walk through the seeds
as keyframes, ``frames`` per keyframe, ``space=w`` (lerp) or ``z`` (slerp); ``grid=[cols,rows]``
walks several cells at once (seeds dealt round-robin) -> ``interp.mp4`` / ``interp.gif``; ``translate``
(``X,Y``) and ``rotate`` (degrees) hold the whole walk moved and turned, as in ``generate.py``.
``layers``: per latent, each ToRGB's contribution (normalised) above the image after each block
(the contributions sum to the final image) -> ``layers.png``; a synthesis network without ToRGB blocks
(the alias-free one) shows each layer's activation at its own size instead (channels ``channel`` ..
``channel + 2`` as RGB; the columns are printed). ``transform``: the seeds in a grid while the input
transform sweeps from ``rotate_from``/``translate_from`` to ``rotate_to``/``translate_to`` (linear,
``frames`` frames; ``loop``: the last frame leads back to the first, e.g. 0..360 degrees) ->
``transform.mp4`` / ``.gif``; generators with an input transform only. Videos (``interp``, ``transform``,
``progress``) are enlarged ``scale`` times (0: to about 256 px). ``spectrum``: NVlabs/stylegan3
``avg_spectra.py``'s average power spectrum of ``num`` generated images (``ckpt``, seeds from ``seed``)
and/or of ``num`` reals (``data``: a folder or zip; ``num=null``: all), whitened with ``mean``/``std``
(default: the reals' own, or the images' own without ``data``), Kaiser ``beta``, ``interp`` times
padding -> ``fakes.npz``/``reals.npz``, ``<name>_heatmap.png`` (smoothed by ``smooth``) and ``slices.png``
(0 and 45 degrees, ``slice_smooth``), plots at ``dpi``; ``npz=[...]`` adds saved spectra (ours or
``avg_spectra.py calc``'s); the reals are read at ``resolution`` (default: the generator's) and the
fakes generated ``batch`` at a time. ``noise``: each noise layer resampled alone, ``variants`` times
(from ``noise_seed``), with the std map -> ``noise.png``; with ``latents=FILE``, its code number
``index``. ``progress``: the run's sample grids in kimg order, the last one held ``hold_last`` frames
more -> ``progress.mp4``/``.gif``. ``dscores``: the
run's ``d_scores.csv`` (callback ``d_scores``) -> ``d_scores.png``. ``augment``: ADA's p and the r_t
heuristic against kimg for one or more runs trained with the CSV logger (``logger=csv``), r_t smoothed
over ``window`` logged points, with ``target`` drawn -> ``augment.png``.

``--help`` prints this text and the keys of each view with their defaults (``visualize.py <view> --help``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from src.utils.cli import console_entry, parse_subcommand

PROG = "visualize.py"
COMMON = dict(ckpt=None, device="cpu", trunc=1.0, noise_mode="const", class_idx=None, out="out/visualize")
COMMANDS: dict[str, dict] = {
    "mix": COMMON | dict(rows="0-3", cols="10-13", layers="0-3", latents=None),
    "interp": COMMON
    | dict(
        seeds="0-3",
        space="w",
        frames=60,
        grid=[1, 1],
        fps=30,
        formats=["mp4", "gif"],
        scale=0,
        loop=True,
        translate="0,0",
        rotate=0.0,
    ),
    "layers": COMMON | dict(seeds="0-1", latents=None, channel=0),
    "transform": COMMON
    | dict(
        seeds="0-3",
        frames=120,
        rotate_from=0.0,
        rotate_to=360.0,
        translate_from="0,0",
        translate_to="0,0",
        loop=True,
        fps=30,
        formats=["mp4", "gif"],
        scale=0,
    ),
    "spectrum": COMMON
    | dict(
        data=None,
        npz=None,
        num=1000,
        seed=0,
        mean=None,
        std=None,
        beta=8.0,
        interp=4,
        smooth=1.25,
        slice_smooth=0.0,
        dpi=100,
        resolution=None,
        batch=16,
    ),
    "noise": COMMON | dict(seed=0, latents=None, index=0, variants=4, noise_seed=0),
    "progress": dict(run=None, fps=4, hold_last=4, formats=["mp4", "gif"], scale=1, out="out/visualize"),
    "dscores": dict(run=None, out=None),
    "augment": dict(runs=None, target=0.6, window=10, out="out/visualize"),
}
REQUIRED = {"progress": {"run": "DIR"}, "dscores": {"run": "DIR"}, "augment": {"runs": "[DIR,...]"}, "spectrum": {}}


def parse_args(argv: list[str]):
    required = {cmd: REQUIRED.get(cmd, {"ckpt": "PATH"}) for cmd in COMMANDS}
    return parse_subcommand(argv, COMMANDS, PROG, kind="view", required=required, doc=__doc__)


def _formats(value) -> list[str]:
    formats = [value] if isinstance(value, str) else list(value)
    bad = [f for f in formats if f not in ("mp4", "gif")]
    if bad or not formats:
        raise ValueError(f"formats={formats}: allowed are mp4, gif")
    return formats


def _codes(cfg, model, seeds_key: str = "seeds"):
    """ws to show: from ``latents=FILE`` (with its noise maps) or from seeds; returns (ws, noise)."""
    from src.latents.files import load_latents
    from src.latents.seeds import parse_seeds
    from src.latents.truncation import truncate
    from src.visualize.render import seeds_to_w

    if cfg.get("latents"):
        lat = load_latents(cfg.latents, model.G)
        ws = truncate(lat.ws, model.G.mapping.w_avg.cpu(), float(cfg.trunc))
        return ws.to(model.device), {k: v.to(model.device) for k, v in lat.noise.items()}
    seeds = parse_seeds(cfg[seeds_key])
    return seeds_to_w(model, seeds, float(cfg.trunc), class_idx=cfg.class_idx), {}


def run(cmd: str, cfg) -> list[Path]:
    from src.latents.files import noise_override
    from src.utils.io import image_grid, save_png
    from src.visualize.video import write_video

    out = Path(cfg.out) if cfg.out else None
    if cmd == "dscores":
        from src.visualize.d_scores import plot_d_scores, read_table

        run_dir = Path(cfg.run)
        return [plot_d_scores(read_table(run_dir / "d_scores.csv"), (out or run_dir) / "d_scores.png")]
    if out is None:
        raise ValueError(f"out={cfg.out!r}: name the folder to write to")
    if cmd == "progress":
        from src.visualize.progress import progress_frames

        frames, kimgs = progress_frames(cfg.run, int(cfg.hold_last))
        print(f"{len(kimgs)} grids, kimg {kimgs[0]:g} .. {kimgs[-1]:g}")
        return [
            write_video(frames, out / f"progress.{f}", fps=float(cfg.fps), scale=int(cfg.scale))
            for f in _formats(cfg.formats)
        ]
    if cmd == "augment":
        from src.visualize.augment import plot_augment

        runs = [cfg.runs] if isinstance(cfg.runs, str) else list(cfg.runs)
        named = {Path(r).name: r for r in runs}
        return [plot_augment(named, out / "augment.png", float(cfg.target), int(cfg.window))]
    if cmd == "spectrum":
        return _spectrum(cfg, out)

    from src.checkpoints.load import load_inference

    model = load_inference(cfg.ckpt, cfg.device, channels_last=True)
    g = model.G
    if cmd == "mix":
        from src.latents.seeds import parse_seeds
        from src.visualize.render import seeds_to_w
        from src.visualize.style_mixing import parse_layers, style_mixing_grid

        layers = parse_layers(cfg.layers, g.num_ws)
        if cfg.latents:
            row_ws, noise = _codes(cfg, model)
        else:
            row_ws, noise = seeds_to_w(model, parse_seeds(cfg.rows), float(cfg.trunc), class_idx=cfg.class_idx), {}
        col_ws = seeds_to_w(model, parse_seeds(cfg.cols), float(cfg.trunc), class_idx=cfg.class_idx)
        if noise:
            print("note: mix renders with the generator's own noise (latent noise maps are per image)")
        images, ncol = style_mixing_grid(model, row_ws, col_ws, layers, cfg.noise_mode)
        return [save_png(image_grid(images, nrow=ncol), out / "mix.png")]
    if cmd == "interp":
        from src.latents.seeds import parse_seeds
        from src.nn.input_transform import parse_rotate, parse_translate, transformed
        from src.visualize.interpolation import interpolation_frames

        formats = _formats(cfg.formats)
        cols, rows = (int(v) for v in cfg.grid)
        with transformed(g.synthesis, parse_translate(cfg.translate), parse_rotate(cfg.rotate)):
            frames = interpolation_frames(
                model,
                parse_seeds(cfg.seeds),
                int(cfg.frames),
                cfg.space,
                (cols, rows),
                float(cfg.trunc),
                cfg.noise_mode,
                bool(cfg.loop),
                cfg.class_idx,
            )
        scale = int(cfg.scale) or max(1, 256 // max(frames[0].shape[:2]))
        return [write_video(frames, out / f"interp.{f}", fps=float(cfg.fps), scale=scale) for f in formats]
    if cmd == "layers":
        from src.visualize.layers import activation_view_grid, layer_view_grid, skip_blocks

        ws, noise = _codes(cfg, model)
        with noise_override(g, noise):
            if skip_blocks(g.synthesis) is None:
                images, ncol, names = activation_view_grid(model, ws, cfg.noise_mode, int(cfg.channel))
                print("columns: " + ", ".join(names))
            else:
                images, ncol = layer_view_grid(model, ws, cfg.noise_mode)
        return [save_png(image_grid(images, nrow=ncol), out / "layers.png")]
    if cmd == "transform":
        from src.nn.input_transform import parse_rotate, parse_translate
        from src.visualize.transform_sweep import sweep_steps, transform_frames

        formats = _formats(cfg.formats)
        steps = sweep_steps(
            int(cfg.frames),
            (parse_rotate(cfg.rotate_from, "rotate_from"), parse_rotate(cfg.rotate_to, "rotate_to")),
            (parse_translate(cfg.translate_from, "translate_from"), parse_translate(cfg.translate_to, "translate_to")),
            bool(cfg.loop),
        )
        ws, _ = _codes(cfg, model)
        frames = transform_frames(model, ws, steps, cfg.noise_mode)
        scale = int(cfg.scale) or max(1, 256 // max(frames[0].shape[:2]))
        return [write_video(frames, out / f"transform.{f}", fps=float(cfg.fps), scale=scale) for f in formats]
    if cmd == "noise":
        from src.visualize.noise import noise_variants, noise_view_grid

        ws, noise = _codes(cfg, model, "seed")
        i = int(cfg.index) if cfg.latents else 0
        one = {k: v[i : i + 1] for k, v in noise.items()}
        with noise_override(g, one):
            variants = noise_variants(model, ws[i : i + 1], int(cfg.variants), int(cfg.noise_seed))
        images, ncol = noise_view_grid(variants)
        print("rows: " + ", ".join(variants))
        return [save_png(image_grid(images, nrow=ncol), out / "noise.png")]
    raise AssertionError(cmd)


def _spectrum(cfg, out: Path) -> list[Path]:
    """The ``spectrum`` view: reals (``data``) first, their whitening then used for the fakes (``ckpt``)."""
    from src.checkpoints.load import load_inference
    from src.utils.resolution import parse_size
    from src.visualize.spectrum import (
        SpectrumAccumulator,
        generated_batches,
        load_spectrum,
        plot_heatmap,
        plot_slices,
        real_batches,
        save_spectrum,
    )

    saved = [] if cfg.npz in (None, "") else [cfg.npz] if isinstance(cfg.npz, str) else list(cfg.npz)
    if not (cfg.ckpt or cfg.data or saved):
        raise ValueError("name the images: ckpt=PATH (generated), data=DIR_OR_ZIP (reals) and/or npz=[FILE,...]")
    num = None if cfg.num is None else int(cfg.num)
    if num is not None and num < 1:
        raise ValueError(f"num={num}: must be at least 1")
    interp, beta = int(cfg.interp), float(cfg.beta)
    model = load_inference(cfg.ckpt, cfg.device, channels_last=True) if cfg.ckpt else None
    mean = None if cfg.mean is None else float(cfg.mean)
    std = None if cfg.std is None else float(cfg.std)
    computed = []
    if cfg.data:
        size = parse_size(cfg.resolution, "resolution") if cfg.resolution is not None else None
        if size is None and model is not None:
            size = model.G.resolution
        n, size, batches = real_batches(cfg.data, size, num)
        acc = SpectrumAccumulator(size, interp, beta)
        for b in batches:
            acc.add(b)
        if mean is None and std is None:
            mean, std = acc.stats()
        computed.append(("reals", acc.spectrum(mean, std)))
    if model is not None:
        if num is None:
            raise ValueError("num=null: give the number of generated images (e.g. num=1000)")
        acc = SpectrumAccumulator(model.G.resolution, interp, beta)
        seeds = list(range(int(cfg.seed), int(cfg.seed) + num))
        for b in generated_batches(model, seeds, float(cfg.trunc), cfg.class_idx, cfg.noise_mode, int(cfg.batch)):
            acc.add(b)
        computed.append(("fakes", acc.spectrum(mean, std)))
    written = []
    for label, s in computed:
        h, w = s.image_size
        print(f"{label}: {s.num} images of {h}x{w}, whitened by mean {s.mean:g}, std {s.std:g}")
        written.append(save_spectrum(s, out / f"{label}.npz"))
    spectra = computed + [(Path(p).stem, load_spectrum(p)) for p in saved]
    for label, s in spectra:
        written.append(plot_heatmap(s, out / f"{label}_heatmap.png", float(cfg.smooth), float(cfg.dpi), label))
    written.append(plot_slices(spectra, out / "slices.png", float(cfg.slice_smooth), float(cfg.dpi)))
    return written


def main(argv: list[str] | None = None) -> None:
    cmd, cfg = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        paths = run(cmd, cfg)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"{PROG} {cmd}: {e}") from None
    for p in paths:
        print(f"wrote {p}")


cli = console_entry(main)

if __name__ == "__main__":
    main()
