"""Project images into a generator's latent space: W, W+ or W then W+ (stylegan2-ada-pytorch projector.py).

    python scripts/project.py ckpt=PATH target=FILE_OR_DIR mode=w|w_plus|w_then_w_plus steps=1000 out=DIR

Keys: ``ckpt`` (a gamut .ckpt or an exported .safetensors; required), ``target`` (an image or a
folder of images; required), ``mode`` (``w``: one code tiled over the layers, editable | ``w_plus``:
one code per layer, closer fit | ``w_then_w_plus``: W for the first ``switch`` of the steps, then
W+), ``steps`` (1000), ``out`` (folder), ``device`` (cpu|cuda; fp32), ``batch`` (targets optimised
together), ``seed`` (303), ``lr`` (0.1), ``lpips_weight`` (1), ``mse`` (pixel MSE weight, 0),
``noise_reg`` (1e5), ``noise`` (optimize|const), ``w_noise`` (0.05), ``spread_weight`` and
``avg_weight`` (W+ penalties on the spread of the layer codes and on their distance to w_avg; 0),
``switch`` (0.5), ``w_stats_n`` (10000), ``class_idx`` (conditional models), ``weights_dir`` (where
``vgg16-397923af.pth`` is; default torch hub's checkpoints folder, where it is downloaded on first use),
``download_weights`` (true; false: never download, also ``GAMUT_OFFLINE=1``), ``video`` (``[mp4,gif]``, ``[]``
for none), ``frame_every`` (10), ``fps`` (30), ``video_scale`` (frame enlargement, 0 = auto).

Writes to ``out``: ``latents.safetensors`` (ws + noise, renders with ``generate.py latents=``),
``<name>.png`` (the projection) and ``<name>_target.png``, ``progress.mp4``/``.gif`` (targets
above, projections below), ``projection.json`` (per target: LPIPS, PSNR, ``w_avg_distance`` and
``layer_spread`` in w_std units; a sampled w scores about 1 and 0).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from src.pretrained.weights import DEFAULT_WEIGHTS_DIR, allow_downloads
from src.utils.cli import console_entry, exit_on_bad_input, parse_key_values

PROG = "project.py"
DEFAULTS = dict(
    ckpt=None,
    target=None,
    mode="w",
    steps=1000,
    out="out/project",
    device="cpu",
    batch=8,
    seed=303,
    lr=0.1,
    lpips_weight=1.0,
    mse=0.0,
    noise_reg=1e5,
    noise="optimize",
    w_noise=0.05,
    spread_weight=0.0,
    avg_weight=0.0,
    switch=0.5,
    w_stats_n=10000,
    class_idx=None,
    weights_dir=DEFAULT_WEIGHTS_DIR,
    download_weights=True,
    video=["mp4", "gif"],
    frame_every=10,
    fps=30,
    video_scale=0,
)


def parse_args(argv: list[str]):
    from src.projection.projector import MODES

    cfg = parse_key_values(argv, DEFAULTS, PROG, required={"ckpt": "PATH", "target": "FILE_OR_DIR"}, doc=__doc__)
    if cfg.mode not in MODES:
        raise SystemExit(f"{PROG}: mode={cfg.mode!r}: choose one of {', '.join(MODES)}")
    videos = [cfg.video] if isinstance(cfg.video, str) else list(cfg.video)
    bad = [v for v in videos if v not in ("mp4", "gif")]
    if bad:
        raise SystemExit(f"{PROG}: video={bad[0]!r}: allowed are mp4, gif (a list, [] for none)")
    return cfg


def projector_config(cfg):
    from src.projection.projector import ProjectorConfig

    return ProjectorConfig(
        mode=cfg.mode,
        steps=int(cfg.steps),
        lr=float(cfg.lr),
        noise_reg=float(cfg.noise_reg),
        noise=cfg.noise,
        w_noise=float(cfg.w_noise),
        lpips_weight=float(cfg.lpips_weight),
        mse_weight=float(cfg.mse),
        spread_weight=float(cfg.spread_weight),
        avg_weight=float(cfg.avg_weight),
        switch=float(cfg.switch),
        w_stats_n=int(cfg.w_stats_n),
        seed=int(cfg.seed),
        frame_every=int(cfg.frame_every),
    )


def project(cfg, lpips=None) -> dict:
    """Run the projection described by ``cfg``; returns the JSON summary (also written to ``out``)."""
    from src.checkpoints.load import load_inference
    from src.latents.files import Latents, save_latents
    from src.metrics.lpips import LPIPS
    from src.projection.projector import Projector
    from src.projection.targets import list_targets, load_target
    from src.utils.io import atomic_write, image_grid, save_png
    from src.visualize.video import write_video

    pcfg = projector_config(cfg)  # bad values fail before anything is loaded
    allow_downloads(cfg.download_weights, "download_weights")  # LPIPS's VGG-16: fetched on first use, or not
    model = load_inference(cfg.ckpt, cfg.device, channels_last=True)
    files = list_targets(cfg.target)
    if lpips is None:
        lpips = LPIPS.from_weights_dir(cfg.weights_dir)
    g = model.G
    c = model.labels_for(1, cfg.class_idx)
    targets = [load_target(f, g.resolution, model.colorspace) for f in files]
    notes = [n for t in targets for n in t.notes]
    for n in notes:
        print(f"note: {n}")
    projector = Projector(g, model.colorspace, lpips, pcfg, c)
    out = Path(cfg.out)
    results, all_ws, all_noise, all_frames = [], [], [], []
    batch = max(1, int(cfg.batch))
    for i in range(0, len(targets), batch):
        part = targets[i : i + batch]
        rgb = torch.stack([t.rgb for t in part])
        cc = None if c is None else c.expand(len(part), -1)
        projector.c = cc
        res = projector.project(rgb, callback=_progress_printer(int(cfg.steps), i, i + len(part) - 1))
        for j, (t, img, m) in enumerate(zip(part, res.images, res.metrics)):
            save_png(image_grid(img[None]), out / f"{t.name}.png")
            save_png(image_grid(t.rgb[None]), out / f"{t.name}_target.png")
            results.append({"name": t.name, "file": str(files[i + j]), **m})
        all_ws.append(res.latents.ws)
        all_noise.append(res.latents.noise)
        all_frames.append([torch.cat([rgb, f]) for f in res.frames])
    info = {"names": [t.name for t in targets], **res.latents.info}
    noise = {k: torch.cat([n[k] for n in all_noise]) for k in all_noise[0]}
    latents_path = save_latents(out / "latents.safetensors", Latents(torch.cat(all_ws), noise, info), g)
    videos = [cfg.video] if isinstance(cfg.video, str) else list(cfg.video)
    written_videos = []
    if videos and all_frames[0]:
        # one video for the first batch when there are several (frames of batches are not aligned in time)
        frames = [image_grid(f, nrow=f.shape[0] // 2) for f in all_frames[0]]
        scale = int(cfg.video_scale) or max(1, 256 // max(g.resolution))
        for fmt in videos:
            written_videos.append(str(write_video(frames, out / f"progress.{fmt}", fps=float(cfg.fps), scale=scale)))
    summary = {
        "mode": cfg.mode,
        "steps": int(cfg.steps),
        "ckpt": str(cfg.ckpt),
        "latents": str(latents_path),
        "w_std": projector.w_std,
        "notes": notes,
        "videos": written_videos,
        "reference": "a sampled w has w_avg_distance ~1 and layer_spread 0; larger means further from W "
        "(better fit, harder to edit)",
        "mean": {
            k: sum(r[k] for r in results) / len(results)
            for k in ("lpips", "psnr", "w_avg_distance", "w_avg_distance_max", "layer_spread")
        },
        "targets": results,
        "config": res.latents.info["config"],
    }
    atomic_write(out / "projection.json", lambda f: f.write(json.dumps(summary, indent=2)), mode="w")
    return summary


def _progress_printer(steps: int, first: int, last: int):
    every = max(1, steps // 10)

    def report(step: int, record: dict) -> None:
        if step % every == 0 or step == steps:
            print(f"targets {first}-{last}: step {step}/{steps} lpips {record['lpips']:.4f}", flush=True)

    return report


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_bad_input(PROG):
        summary = project(cfg)
    m = summary["mean"]
    print(
        f"{summary['mode']}: lpips {m['lpips']:.4f}, psnr {m['psnr']:.2f} dB, w_avg_distance "
        f"{m['w_avg_distance']:.3f} w_std, layer_spread {m['layer_spread']:.3f} w_std -> {cfg.out}"
    )


cli = console_entry(main)

if __name__ == "__main__":
    main()
