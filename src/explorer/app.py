"""The explorer's page (Gradio Blocks) and its server: one tab per view of :class:`Explorer`.

The page holds no logic of its own: every control feeds one :class:`Explorer` method, and errors
that method raises (``ValueError``: a bad seed list, an upload that is not an image) appear on the
page as a message. :func:`serve` binds to 127.0.0.1 unless told otherwise, lets Gradio serve only
the files of a private temporary workspace (uploads are written there, size-limited), and removes
that workspace when the server stops.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from src.explorer.segan import SUBSPACE_COLUMNS
from src.explorer.views import MAX_UPLOAD_BYTES, Cancelled, Explorer

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
NOISE_CHOICES = ["const", "random", "none"]
# Rendered images: PNG, enlarged to the panel without smoothing (a 32 px model stays readable).
VIEW = dict(
    type="numpy", format="png", interactive=False, buttons=["download"], height=512, elem_classes=["gamut-view"]
)
CSS = ".gamut-view img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"
LIVE = dict(trigger_mode="always_last", show_progress="minimal")  # a slider drag renders its last position


def _page_errors(fn):
    """Run a view; its ValueError / FileNotFoundError becomes a message on the page (gr.Error).
    Generator views (projection) are wrapped as generators; the signature stays visible to Gradio."""
    import gradio as gr

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (ValueError, FileNotFoundError, Cancelled) as e:
                raise gr.Error(str(e), print_exception=False) from None

        return stream

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, Cancelled) as e:
            raise gr.Error(str(e), print_exception=False) from None

    return run


def _latent_controls(gr, info: dict, seed_label: str = "seed", seed_value="0"):
    """Seed, ψ, noise mode and (conditional models) class: the inputs most views share."""
    seed = gr.Textbox(seed_value, label=seed_label, max_lines=1)
    psi = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="truncation ψ")
    noise = gr.Radio(NOISE_CHOICES, value="const", label="noise mode")
    classes = ["data"] + [str(i) for i in range(info["classes"])]
    cls = gr.Dropdown(classes, value="data", label="class (data: drawn per seed)", visible=info["classes"] > 0)
    return seed, psi, noise, cls


def build_app(explorer: Explorer):
    """The Gradio Blocks of ``explorer``: the generator views, or the colorizer's for ChromaGAN."""
    import gradio as gr

    info = explorer.describe()
    title = f"gamut explorer: {info.get('file', explorer.model.__class__.__name__)}"
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        facts = ", ".join(f"{k} {v}" for k, v in info.items() if k != "file")
        gr.Markdown(f"## {title}\n{facts}")
        if explorer.colorizes:
            _colorize_tab(gr, explorer)
        else:
            _generator_tabs(gr, demo, explorer, info)
    return demo


def _generator_tabs(gr, demo, ex: Explorer, info: dict) -> None:
    image = dict(VIEW, show_label=False)
    with gr.Tab("Seeds"):
        with gr.Row():
            with gr.Column(scale=1):
                seeds, psi, noise, cls = _latent_controls(gr, info, "seeds", "0-7")
                cutoff = gr.Slider(1, info["num_ws"], value=info["num_ws"], step=1, label="truncation cutoff (ws)")
                # the input transform (generate.py translate= rotate=): shown when the generator has one
                moves = info.get("input_transform", False)
                tx = gr.Slider(-1.0, 1.0, value=0.0, step=0.01, label="translate x (image widths)", visible=moves,
                               elem_id="seed-translate-x")  # fmt: skip
                ty = gr.Slider(-1.0, 1.0, value=0.0, step=0.01, label="translate y (image widths)", visible=moves,
                               elem_id="seed-translate-y")  # fmt: skip
                rot = gr.Slider(-180.0, 180.0, value=0.0, step=1.0, label="rotate (degrees)", visible=moves,
                                elem_id="seed-rotate")  # fmt: skip
            grid = gr.Image(elem_id="seed-grid", **image)
        inputs = [seeds, psi, cutoff, noise, cls, tx, ty, rot]
        gr.on([seeds.submit, psi.change, cutoff.change, noise.change, cls.change, tx.change, ty.change, rot.change],
              _page_errors(ex.seed_grid), inputs, grid, **LIVE)  # fmt: skip
        demo.load(_page_errors(ex.seed_grid), inputs, grid)

    with gr.Tab("Style mixing") as tab:
        with gr.Row():
            with gr.Column(scale=1):
                rows, psi_m, noise_m, cls_m = _latent_controls(gr, info, "row seeds", "0-3")
                cols = gr.Textbox("10-13", label="column seeds", max_lines=1)
                lo = gr.Slider(0, info["num_ws"] - 1, value=0, step=1, label="first swapped w")
                hi = gr.Slider(0, info["num_ws"] - 1, value=min(3, info["num_ws"] - 1), step=1, label="last swapped w")
                go = gr.Button("Mix")
            mixed = gr.Image(elem_id="mix-grid", **image)

        def mix(rows, cols, lo, hi, psi, noise, cls):
            return ex.style_mixing(rows, cols, f"{int(min(lo, hi))}-{int(max(lo, hi))}", psi, noise, cls)

        inputs = [rows, cols, lo, hi, psi_m, noise_m, cls_m]
        gr.on([tab.select, go.click, rows.submit, cols.submit, lo.change, hi.change, psi_m.change, noise_m.change],
              _page_errors(mix), inputs, mixed, **LIVE)  # fmt: skip

    with gr.Tab("Interpolation") as tab:
        with gr.Row():
            with gr.Column(scale=1):
                a = gr.Number(0, label="seed a", precision=0)
                b = gr.Number(1, label="seed b", precision=0)
                t = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="a -> b", elem_id="interp-t")
                space = gr.Radio(["w", "z"], value="w", label="space (w: lerp, z: slerp)")
                _, psi_i, noise_i, cls_i = _latent_controls(gr, info)
                with gr.Accordion("video", open=False):
                    vseeds = gr.Textbox("0-3", label="keyframe seeds (loops back to the first)", max_lines=1)
                    vframes = gr.Slider(2, 240, value=60, step=1, label="frames per keyframe")
                    vfmt = gr.Radio(["mp4", "gif"], value="mp4", label="format")
                    vgo = gr.Button("Write video")
                    vcancel = gr.Button("Cancel", variant="stop")
            with gr.Column(scale=2):
                frame = gr.Image(elem_id="interp-frame", **image)
                vfile = gr.File(label="video", interactive=False)
        inputs = [a, b, t, space, psi_i, noise_i, cls_i]
        gr.on([tab.select, a.change, b.change, t.change, space.change, psi_i.change, noise_i.change, cls_i.change],
              _page_errors(ex.interpolation_frame), inputs, frame, **LIVE)  # fmt: skip

        def video(seeds, frames, space, psi, noise, cls, fmt, progress=gr.Progress()):  # noqa: B008 (Gradio's idiom)
            def report(done, total):
                progress((done, total), desc="rendering frames", unit="images")

            return str(ex.interpolation_video(seeds, frames, space, psi, noise, cls, fmt, progress=report))

        vgo.click(_page_errors(video), [vseeds, vframes, space, psi_i, noise_i, cls_i, vfmt], vfile)
        vcancel.click(ex.cancel, None, None, concurrency_limit=None)

    with gr.Tab("Layers") as tab:
        with gr.Row():
            with gr.Column(scale=1):
                seed_l, psi_l, noise_l, cls_l = _latent_controls(gr, info)
                activations = info.get("layer_view") == "activations"
                channel = gr.Number(0, label="first channel shown (three as RGB)", precision=0, minimum=0,
                                    visible=activations, elem_id="layer-channel")  # fmt: skip
                if activations:
                    gr.Markdown("Each layer's output at its own size, margin included (the input, every layer, "
                                "ToRGB), channels scaled to their own range; last column: the image.")  # fmt: skip
                else:
                    gr.Markdown("Top row: what each block's ToRGB adds (scaled to its own range); bottom row: the "
                                "image after each block. The contributions sum to the final image.")  # fmt: skip
            layer_img = gr.Image(elem_id="layer-grid", **image)
        inputs = [seed_l, psi_l, noise_l, cls_l, channel]
        gr.on([tab.select, seed_l.submit, psi_l.change, noise_l.change, cls_l.change, channel.change],
              _page_errors(ex.layers), inputs, layer_img, **LIVE)  # fmt: skip

    with gr.Tab("Noise", visible=info["noise_layers"] > 0) as tab:  # no tab for a generator without noise inputs
        with gr.Row():
            with gr.Column(scale=1):
                seed_n, psi_n, _, cls_n = _latent_controls(gr, info)
                variants = gr.Slider(2, 8, value=4, step=1, label="variants per noise layer")
                noise_seed = gr.Number(0, label="noise seed", precision=0)
                gr.Markdown("One row per noise input, resampled alone; the last column is the per-pixel std.")
            noise_img = gr.Image(elem_id="noise-grid", **image)
        inputs = [seed_n, psi_n, variants, noise_seed, cls_n]
        gr.on([tab.select, seed_n.submit, psi_n.change, variants.change, noise_seed.change, cls_n.change],
              _page_errors(ex.noise), inputs, noise_img, **LIVE)  # fmt: skip

    if ex.segan:
        _segan_tab(gr, demo, ex, info, image)
    _projection_tab(gr, ex, info, image)


def _segan_tab(gr, demo, ex: Explorer, info: dict, image: dict) -> None:
    with gr.Tab("SEGAN subspaces"):
        with gr.Row():
            with gr.Column(scale=1):
                seed, _, noise, cls = _latent_controls(gr, info)
                layer = gr.Slider(0, info["layers"] - 1, value=0, step=1, label="layer L", elem_id="segan-layer")
                sub = gr.Slider(0, info["subspaces"][0] - 1, value=0, step=1, label="subspace N", elem_id="segan-sub")
                dim = gr.Slider(0, info["q"] - 1, value=0, step=1, label="dimension D", elem_id="segan-dim")
                value = gr.Slider(-5.0, 5.0, value=0.0, step=0.1, label="value", elem_id="segan-value")
                units = gr.Radio(["sigma", "raw"], value="sigma", label="units (sigma: std over sampled latents)")
                op = gr.Radio(["add", "set", "scale"], value="add", label="op")
            edited = gr.Image(elem_id="segan-image", **image)
        gr.Dataframe(ex.subspace_table(), headers=list(SUBSPACE_COLUMNS), interactive=False,
                             label="subspace table (traverse.py table=true)")  # fmt: skip

        def subspaces(layer):
            n = ex.subspaces_of(layer)
            return gr.Slider(maximum=max(n - 1, 0), value=0, interactive=n > 1)

        layer.change(subspaces, layer, sub, queue=False)
        inputs = [seed, layer, sub, dim, value, op, units, noise, cls]
        gr.on([seed.submit, layer.change, sub.change, dim.change, value.change, op.change, units.change, noise.change,
               cls.change], _page_errors(ex.segan_edit), inputs, edited, **LIVE)  # fmt: skip
        demo.load(_page_errors(ex.segan_edit), inputs, edited)


def _projection_tab(gr, ex: Explorer, info: dict, image: dict) -> None:
    with gr.Tab("Projection"):
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="target image", file_types=["image"], elem_id="project-upload")
                mode = gr.Radio(["w", "w_plus", "w_then_w_plus"], value="w", label="latent space")
                steps = gr.Slider(10, 2000, value=1000, step=10, label="steps")
                _, _, _, cls = _latent_controls(gr, info)
                with gr.Row():
                    go = gr.Button("Project", variant="primary")
                    stop = gr.Button("Cancel", variant="stop")
            with gr.Column(scale=2):
                shown = gr.Image(label="target | projection", elem_id="project-image", **(image | {"show_label": True}))
                status = gr.Markdown(elem_id="project-status")
                latents = gr.File(label="latent file (generate.py latents=, traverse.py latents=)", interactive=False)
                figures = gr.JSON(label="projection figures")

        def preview(path):
            if not path:
                return None, ""
            img, notes = ex.projection_target(path)
            return img, "\n".join(f"- {n}" for n in notes)

        upload.upload(_page_errors(preview), upload, [shown, status])

        def run(path, mode, steps, cls):
            if not path:
                raise ValueError("upload a target image first")
            try:
                for u in ex.project(path, mode, int(steps), cls):
                    text = f"step {u.step}/{u.steps}, LPIPS {u.lpips:.4f}"
                    if u.latents is None:
                        yield u.image, text, None, None
                    else:
                        yield u.image, text + " (done)", str(u.latents), u.metrics
            except Cancelled:
                yield gr.skip(), "cancelled", None, None

        go.click(_page_errors(run), [upload, mode, steps, cls], [shown, status, latents, figures])
        stop.click(ex.cancel, None, None, concurrency_limit=None)


def _colorize_tab(gr, ex: Explorer) -> None:
    image = dict(VIEW, height=320)
    with gr.Tab("Colorize"):
        upload = gr.File(label="photo", file_types=["image"], elem_id="colorize-upload")
        with gr.Row():
            gray = gr.Image(label="gray input", elem_id="colorize-gray", **image)
            colorized = gr.Image(label="colorization", elem_id="colorize-result", **image)
            original = gr.Image(label="original", elem_id="colorize-original", **image)
        score = gr.Markdown(elem_id="colorize-psnr")

        def colorize(path):
            if not path:
                return None, None, None, ""
            g, c, o, db = ex.colorize(path)
            if db is None:
                return g, c, o, "gray photo: no original colours to compare"
            return g, c, o, f"PSNR {db:.2f} dB"  # inf when identical

        upload.upload(_page_errors(colorize), upload, [gray, colorized, original, score])


# ----------------------------------------------------------------------------------------------
# Serving.


@contextlib.contextmanager
def workspace(prefix: str = "gamut-explore-") -> Iterator[Path]:
    """A private temporary folder that is Gradio's upload and cache folder inside the block, removed after."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(path / "gradio")
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old
        shutil.rmtree(path, ignore_errors=True)


def launch(explorer: Explorer, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Start the page's server; returns the Blocks (``block=False``: running in a thread, close with
    ``.close()``). Warns when ``host`` is not a loopback address."""
    import gradio as gr

    if host not in LOCAL_HOSTS:
        print(
            f"explore: serving on {host}:{port}, not only on this machine: anyone who can reach it can use "
            "the page and upload files (host=127.0.0.1 keeps it local; use an SSH tunnel for a remote server)"
        )
    demo = build_app(explorer)
    font = ["ui-sans-serif", "system-ui", "sans-serif"]  # local fonts: the page fetches nothing from the web
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host,
        server_port=int(port),
        share=False,
        inbrowser=False,
        prevent_thread_lock=not block,
        max_file_size=MAX_UPLOAD_BYTES,
        show_error=True,
        quiet=not block,
        footer_links=[],
        css=CSS,
        theme=gr.themes.Default(font=font, font_mono=["ui-monospace", "monospace"]),
    )
    return demo


def serve(ckpt: str | Path, host: str = "127.0.0.1", port: int = 7860, device: str = "cpu", **kwargs) -> None:
    """Load ``ckpt`` and serve its explorer until Ctrl-C (or SIGTERM); the workspace goes with it."""
    with workspace() as ws:
        explorer = Explorer.open(ckpt, ws, device, **kwargs)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            launch(explorer, host, port, block=True)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the server like Ctrl-C: the workspace is removed
