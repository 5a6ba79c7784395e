"""Importing NVIDIA StyleGAN3 pickles (configs T and R): architecture read from the stored objects, the same
images as the source weights, refusals naming the tensor or layer, the tools, fine-tuning and export.

The pickles are written by :func:`tests.foreign_layouts.nvidia_stylegan3_generator` in the structure of
NVlabs/stylegan3's snapshots (``training/training_loop.py``: G, D, G_ema, augment_pipe,
training_set_kwargs; ``training/networks_stylegan3.py``'s stored attributes, numpy ones included), from
gamut networks with random weights, so "the source" is gamut's generator holding those weights.
tests/parity/stylegan3_pickle.py repeats the comparison against NVIDIA's own code (docs/parity.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from src.checkpoints.export import load_generator
from src.checkpoints.importing import build_module, import_checkpoint
from src.checkpoints.load import load_module
from src.modules.stylegan2.discriminator import Discriminator
from src.modules.stylegan3.module import StyleGAN3
from src.modules.stylegan3.networks import StyleGAN3Generator, gamut_name
from src.nn.input_transform import user_transform
from src.pretrained import UnsafePickleError, UnsupportedNetworkError, read
from src.pretrained import nvidia_stylegan3 as n3
from tests import foreign_layouts as fl
from tests.parity.stylegan3_generator import randomise

# Tiny networks: 16 px, 4 alias-free layers; R doubles G's widths against D's, as train.py does.
D_WIDTHS = dict(channel_base=256, channel_max=16)
CONFIGS = {
    "t": dict(channel_base=256, channel_max=16, conv_kernel=3, use_radial_filters=False),
    "r": dict(channel_base=512, channel_max=32, conv_kernel=1, use_radial_filters=True),
}


def _generator(cfg: str, num_classes: int = 0, img_channels: int = 3, seed: int = 0, **kw) -> StyleGAN3Generator:
    """A random StyleGAN3 generator in which every tensor matters (biases, input affine, w_avg, EMAs)."""
    torch.manual_seed(seed)
    args = dict(z_dim=8, w_dim=8, resolution=16, num_layers=4, conv_clamp=256.0, num_fp16_res=2)
    args.update(magnitude_ema_beta=0.9989, **CONFIGS[cfg])
    g = StyleGAN3Generator(num_classes=num_classes, img_channels=img_channels, **(args | kw)).eval()
    randomise(g, seed + 100)  # every tensor matters, as in the parity run against NVIDIA's code
    return g


def _discriminator(num_classes: int = 0, img_channels: int = 3, seed: int = 1) -> Discriminator:
    torch.manual_seed(seed)
    d = Discriminator(
        resolution=(16, 16),
        img_channels=img_channels,
        num_classes=num_classes,
        mbstd_group=2,
        conv_clamp=256.0,
        **D_WIDTHS,
    )
    with torch.no_grad():
        for name, p in d.named_parameters():
            if name.endswith("bias"):
                p.add_(0.1 * torch.randn(p.shape))
    return d.eval()


def _snapshot(g, d, g_ema=None, **gkw) -> dict:
    """A snapshot dict as training_loop.py pickles it."""
    return {
        "G": fl.nvidia_stylegan3_generator(g, **gkw),
        "D": fl.nvidia_discriminator(d, conv_clamp=256.0, **D_WIDTHS),
        "G_ema": fl.nvidia_stylegan3_generator(g_ema if g_ema is not None else g, **gkw),
        "augment_pipe": fl.nvidia_augment_pipe(),
        "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "resolution": 16},
    }


def _labels(n: int, num_classes: int) -> torch.Tensor | None:
    return torch.eye(num_classes)[torch.arange(n) % num_classes] if num_classes else None


@pytest.mark.parametrize("cfg,num_classes,img_channels", [("t", 0, 3), ("r", 3, 3), ("t", 2, 1)])
def test_stylegan3_pickle_imports_and_gives_the_source_images(tmp_path, cfg, num_classes, img_channels):
    g, g_ema = _generator(cfg, num_classes, img_channels, 0), _generator(cfg, num_classes, img_channels, 5)
    d = _discriminator(num_classes, img_channels)
    src = tmp_path / "network-snapshot-000200.pkl"
    fl.write_pickle(src, _snapshot(g, d, g_ema))
    out, imported = import_checkpoint(src, tmp_path / "sg3.ckpt")
    assert imported.family == "stylegan3" and imported.notes == []
    hp = imported.hparams
    g_widths = (None, None) if cfg == "t" else (512, 32)  # only where G's differ from D's
    assert (hp["g_channel_base"], hp["g_channel_max"], hp["channel_base"], hp["channel_max"]) == (*g_widths, 256, 16)
    assert (hp["conv_kernel"], hp["use_radial_filters"]) == (CONFIGS[cfg]["conv_kernel"], cfg == "r")
    assert (hp["resolution"], hp["img_channels"], hp["num_classes"], hp["z_dim"], hp["w_dim"]) == (
        16,
        img_channels,
        num_classes,
        8,
        8,
    )
    assert (hp["map_depth"], hp["map_lr_multiplier"], hp["w_avg_beta"]) == (2, 0.01, 0.998)
    assert (hp["conv_clamp"], hp["num_fp16_res"], hp["magnitude_ema_beta"]) == (256.0, 2, 0.9989)
    assert (hp["mbstd_group"], hp["mbstd_channels"], hp["use_noise"]) == (2, 1, False)
    assert hp["synthesis"] == dict(
        num_layers=4,
        num_critical=2,
        first_cutoff=2.0,
        first_stopband=2**2.1,
        last_stopband_rel=2**0.3,
        margin_size=10,
        output_scale=0.25,
        filter_size=6,
        lrelu_upsampling=2,
    )
    model = load_module(out)
    assert isinstance(model, StyleGAN3) and model.colorspace.channels == img_channels
    # every NVIDIA tensor name lands where the family's own name map puts it
    nv_names = fl.as_records(fl.nvidia_stylegan3_generator(g_ema)).tensors()
    assert sorted(imported.G_ema) == sorted(gamut_name(k) for k in nv_names)
    z, c = torch.randn(4, 8), _labels(4, num_classes)
    with torch.no_grad():
        for psi in (1.0, 0.7):
            assert torch.equal(model.G_ema(z, c, psi=psi), g_ema(z, c, psi=psi)), psi
            assert torch.equal(model.G(z, c, psi=psi), g(z, c, psi=psi)), psi
        still = model.G_ema(z, c, psi=0.7)
        m = user_transform((0.1, -0.05), 15.0)  # gen_images.py's --translate/--rotate, into the input's buffer
        model.G_ema.synthesis.input.transform.copy_(m)
        g_ema.synthesis.input.transform.copy_(m)
        moved = model.G_ema(z, c, psi=0.7)
        assert torch.equal(moved, g_ema(z, c, psi=0.7)) and not torch.equal(moved, still)
        g_ema.synthesis.input.transform.copy_(torch.eye(3))
        x = torch.randn(4, img_channels, 16, 16)
        assert torch.equal(model.D(x, c), d(x, c))
    layers = zip(model.G_ema.synthesis.typed_layers(), g_ema.synthesis.typed_layers())
    assert all(a.magnitude_ema_beta == b.magnitude_ema_beta == 0.9989 for a, b in layers)
    # the safetensors export written beside it rebuilds the same generator without Lightning
    g2, cs, config = load_generator(out.with_suffix(".safetensors"))
    assert config["class"].endswith("StyleGAN3Generator") and cs.channels == img_channels
    with torch.no_grad():
        assert torch.equal(g2(z, c, psi=0.7), g_ema(z, c, psi=0.7))


def test_schedule_is_read_from_the_layers_when_no_arguments_are_stored():
    """No constructor arguments stored: widths and the filter schedule come from the layers' attributes
    (a custom schedule, f_t0 readable from layer 0 since 2 f_t0 > 16), and the module is the same network."""
    custom = dict(first_stopband=2**3.1, margin_size=4, num_critical=1, filter_size=4, last_stopband_rel=2**0.5)
    g = _generator("t", num_layers=5, first_cutoff=3.0, **custom)
    imported = n3.convert(fl.as_records({"G_ema": fl.nvidia_stylegan3_generator(g, stored_kwargs=False)}), "fresh")
    syn = imported.hparams["synthesis"]
    for key, value in (custom | dict(num_layers=5, first_cutoff=3.0)).items():
        assert syn[key] == pytest.approx(value, rel=1e-12), key
    assert "derived from the layer widths" in imported.notes[0]
    model = build_module(imported)
    z = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.equal(model.G_ema(z, psi=0.7), g(z, psi=0.7))
    assert torch.equal(model.G.synthesis.layers[2].weight, g.synthesis.layers[2].weight)  # G copied from G_ema
    assert (model.hparams["channel_base"], model.hparams["g_channel_base"]) == (256, None)  # fresh D: train.py's


def _records(g, d=None) -> dict:
    data = {"G_ema": fl.nvidia_stylegan3_generator(g), "G": fl.nvidia_stylegan3_generator(g)}
    if d is not None:
        data["D"] = fl.nvidia_discriminator(d, conv_clamp=256.0, **D_WIDTHS)
    return data


def _layer(data: dict, key: str, i: int) -> fl.Rec:
    syn = data[key].state["_modules"]["synthesis"]
    return syn.state["_modules"][syn.state["layer_names"][i]]


def test_damaged_or_mismatched_pickles_are_refused_naming_the_tensor_or_layer():
    g = _generator("r")
    name2 = g.synthesis.layer_names[2]

    def refused(data: dict, match: str) -> None:
        with pytest.raises(UnsupportedNetworkError, match=match):
            build_module(n3.convert(fl.as_records(data)))

    data = _records(g)
    _layer(data, "G_ema", 2).state["_parameters"]["weight"] = torch.zeros(3, 3, 1, 1)
    refused(data, rf"G_ema\.synthesis\.layers\.2\.weight \(G_ema\.synthesis\.{name2}\.weight in the source\).*shape")
    data = _records(g)
    del _layer(data, "G", 1).state["_parameters"]["bias"]
    refused(data, r"no tensor for G\.synthesis\.layers\.1\.bias")
    data = _records(g)
    down = _layer(data, "G_ema", 1).state["_buffers"]
    down["down_filter"] = down["down_filter"] * 1.001
    refused(data, r"G_ema\.synthesis\.layers\.1\.down_filter .* differs from the filter gamut designs")
    data = _records(g)
    for key in ("G", "G_ema"):
        _layer(data, key, 3).state["out_cutoff"] = np.float64(7.5)  # a schedule gamut would not compute
    refused(data, r"G\.synthesis\.layers\.3 \(L3_\w+\): the source stores out_cutoff=7\.5")
    data = _records(g)
    _layer(data, "G_ema", 0).state["conv_kernel"] = 3
    refused(data, r"G.s conv_kernel differs between layers \(\[.1., .3.\]\)")
    data = _records(g)
    data["G"] = fl.nvidia_stylegan3_generator(_generator("r", num_layers=5))
    refused(data, "G and G_ema have different architectures")
    data = _records(g, _discriminator())
    for rec in data["D"].state["_modules"].values():
        for sub in rec.state["_modules"].values():
            if sub.class_name == "Conv2dLayer" and sub.state.get("conv_clamp"):
                sub.state["conv_clamp"] = 128
    refused(data, "D conv_clamp=128.0 differs from G's 256.0")
    with pytest.raises(UnsupportedNetworkError, match="no G_ema"):
        n3.convert({"G": fl.as_records(fl.nvidia_stylegan3_generator(g))})


def test_numeric_arrays_are_read_and_object_arrays_refused(tmp_path):
    g = _generator("t")
    data = _records(g)
    src = tmp_path / "ok.pkl"
    fl.write_pickle(src, data)
    layout = read(src).layout  # sizes arrive as numpy arrays ([width, height], broadcast) and are read
    assert layout["synthesis.input"]["size"] == g.synthesis.input.size
    _layer(data, "G_ema", 1).state["in_size"] = np.array([36, "36"], dtype=object)
    fl.write_pickle(tmp_path / "bad.pkl", data)
    with pytest.raises(UnsafePickleError, match="numpy dtype object"):
        read(tmp_path / "bad.pkl")


def test_tools_import_generate_and_export_as_nvidia_numbers_seeds(tmp_path, capsys):
    """The import tool on a StyleGAN3 pickle (tests/test_import_checkpoint.py runs its script wrapper);
    generate's seeds are gen_images.py's; the export tool writes safetensors."""
    from PIL import Image

    from src.tools import export, generate
    from src.tools import import_checkpoint as import_tool

    g = _generator("t")
    src = tmp_path / "sg3.pkl"
    fl.write_pickle(src, _snapshot(g, _discriminator()))
    out = tmp_path / "w" / "sg3.ckpt"
    import_tool.main([f"src={src}", f"out={out}", "export=false"])
    assert "as stylegan3: 16x16" in capsys.readouterr().out
    assert out.is_file() and not out.with_suffix(".safetensors").exists()
    generate.main([f"ckpt={out}", "seeds=3-4", "trunc=0.7", f"out={tmp_path / 'img'}"])
    for seed in (3, 4):  # gen_images.py: z = RandomState(seed).randn(1, z_dim); (x * 127.5 + 128).clamp(0, 255)
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, 8)).float()
        with torch.no_grad():
            x = g(z, psi=0.7)
        expected = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy().astype(int)
        got = np.asarray(Image.open(tmp_path / "img" / f"seed{seed:04d}.png")).astype(int)
        assert np.abs(got - expected).max() <= 1 and (got != expected).mean() < 0.02
    export.main([f"ckpt={out}", f"out={tmp_path / 'G.safetensors'}"])
    g2, _, _ = load_generator(tmp_path / "G.safetensors")
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(g2(z), g(z))


def test_finetune_with_freeze_d_starts_from_the_imported_weights(tmp_path, tiny_cfg, log_dir):
    from src.train import train
    from src.utils.validation import ConfigError

    g, d = _generator("t"), _discriminator()
    ckpt, _ = import_checkpoint(_write(tmp_path, g, d), tmp_path / "sg3.ckpt")
    args = ["model=stylegan3", "experiment=finetune", f"ckpt_init={ckpt}", "model.freeze_d=2"]
    train(tiny_cfg(*args, "trainer.max_steps=1", run_name="ft"))
    run = log_dir / "finetune" / "ft"
    log = (run / "train.log").read_text()
    assert "model.conv_clamp: None -> 256.0" in log and "model.channel_base: 128 -> 256" in log
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    sd, hp = saved["state_dict"], saved["hyper_parameters"]
    assert hp["synthesis"]["num_layers"] == 4 and hp["conv_kernel"] == 3 and hp["ema"]["rampup"] is None
    for name, t in d.state_dict().items():  # Freeze-D: the 16 px block's FromImage, conv0 kept as imported
        if name.startswith(("blocks.0.fromrgb", "blocks.0.conv0")):
            assert torch.equal(sd[f"D.{name}"], t), name
    assert not torch.equal(sd["D.blocks.0.conv1.weight"], d.blocks[0].conv1.weight)
    assert not torch.equal(sd["G.synthesis.layers.1.weight"], g.synthesis.layers[1].weight)  # G trained
    assert torch.equal(sd["G.synthesis.layers.1.up_filter"], g.synthesis.layers[1].up_filter)
    with pytest.raises(ConfigError, match="StyleGAN3.*model=stylegan2|pick the matching model"):
        train(tiny_cfg("experiment=finetune", f"ckpt_init={ckpt}", run_name="wrong"))


def _write(tmp_path: Path, g, d) -> Path:
    src = tmp_path / "sg3.pkl"
    fl.write_pickle(src, _snapshot(g, d))
    return src
