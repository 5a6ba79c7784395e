"""Importing NVIDIA pickles and rosinality checkpoints: safety, equivalence, CLI and fine-tuning."""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from src.checkpoints.export import load_generator
from src.checkpoints.importing import build_module, import_checkpoint
from src.checkpoints.load import load_module
from src.modules.stylegan2.discriminator import Discriminator
from src.modules.stylegan2.generator import Generator
from src.pretrained import UnsafePickleError, UnsupportedNetworkError, read
from src.pretrained.nvidia import convert as nvidia_convert
from tests import foreign_layouts as fl

ROOT = Path(__file__).resolve().parents[1]
ARCH = dict(z_dim=16, w_dim=16, resolution=(16, 16), channel_base=128, channel_max=16)


def _randomize(module: torch.nn.Module, seed: int) -> None:
    """Give every tensor (noise strengths and w_avg too, zero at init) a random value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point() and not name.endswith("fir"):
                t.copy_(torch.randn(t.shape, generator=gen) * (0.3 if "noise_strength" in name else 1.0))


def _nets(num_classes=0, img_channels=3, map_depth=2, seed=0):
    g = Generator(num_classes=num_classes, img_channels=img_channels, map_depth=map_depth, **ARCH)
    d = Discriminator(
        resolution=ARCH["resolution"],
        img_channels=img_channels,
        num_classes=num_classes,
        channel_base=128,
        channel_max=16,
        mbstd_group=2,
    )
    _randomize(g, seed)
    _randomize(d, seed + 1)
    return g, d


def _nvidia_pickle(path, g, d, g_ema=None, clamp=256.0):
    kw = dict(conv_clamp=clamp, channel_base=128, channel_max=16)
    data = {
        "G": fl.nvidia_generator(g, **kw),
        "D": fl.nvidia_discriminator(d, **kw),
        "G_ema": fl.nvidia_generator(g_ema or g, **kw),
        "augment_pipe": None,
        "training_set_kwargs": {"resolution": 16, "use_labels": g.c_dim > 0},
    }
    fl.write_pickle(path, data)
    return path


def _same_outputs(model, g, d, num_classes=0):
    torch.manual_seed(1)
    z = torch.randn(4, g.z_dim)
    c = torch.nn.functional.one_hot(torch.arange(4) % max(num_classes, 1), num_classes).float() if num_classes else None
    with torch.no_grad():
        for psi in (1.0, 0.7):
            ref = g(z, c, psi=psi, noise_mode="const")
            ours = model.G_ema(z, c, psi=psi, noise_mode="const")
            assert torch.allclose(ours, ref, atol=1e-6, rtol=0), psi
        x = torch.randn(4, g.img_channels, *g.resolution)
        assert torch.allclose(model.D(x, c), d(x, c), atol=1e-6, rtol=0)


@pytest.mark.parametrize("num_classes,img_channels", [(0, 3), (3, 3), (0, 1)])
def test_nvidia_pickle_imports_and_matches(tmp_path, num_classes, img_channels):
    g, d = _nets(num_classes, img_channels)
    src = _nvidia_pickle(tmp_path / "network-snapshot-000100.pkl", g, d)
    out, imported = import_checkpoint(src, tmp_path / "net.ckpt")
    assert imported.format == "nvidia-pickle" and imported.notes == []
    hp = imported.hparams
    assert (hp["resolution"], hp["img_channels"], hp["num_classes"], hp["map_depth"]) == (
        16,
        img_channels,
        num_classes,
        2,
    )
    assert (hp["channel_base"], hp["channel_max"], hp["conv_clamp"], hp["mbstd_group"]) == (128, 16, 256.0, 2)
    model = load_module(out)
    # gamut's own G with NVIDIA's clamp reproduces the import exactly
    ref_g = Generator(num_classes=num_classes, img_channels=img_channels, map_depth=2, conv_clamp=256.0, **ARCH)
    ref_g.load_state_dict(g.state_dict())
    ref_d = Discriminator(
        resolution=(16, 16),
        img_channels=img_channels,
        num_classes=num_classes,
        channel_base=128,
        channel_max=16,
        mbstd_group=2,
        conv_clamp=256.0,
    )
    ref_d.load_state_dict(d.state_dict())
    _same_outputs(model, ref_g, ref_d, num_classes)
    assert model.colorspace.name == {1: "gray", 3: "rgb"}[img_channels]
    # safetensors export loads without Lightning and matches
    g2, cs, config = load_generator(out.with_suffix(".safetensors"))
    z = torch.randn(2, 16)
    c = model.random_labels(2)
    assert torch.equal(g2(z, c, noise_mode="const"), model.G_ema(z, c, noise_mode="const"))
    assert config["source"]["format"] == "nvidia-pickle" and cs.name == model.colorspace.name


def test_g_and_g_ema_kept_apart(tmp_path):
    g, d = _nets(seed=0)
    g_ema, _ = _nets(seed=5)
    model = load_module(import_checkpoint(_nvidia_pickle(tmp_path / "a.pkl", g, d, g_ema), tmp_path / "a.ckpt")[0])
    assert torch.equal(model.G.synthesis.blocks[0].const, g.synthesis.blocks[0].const)
    assert torch.equal(model.G_ema.synthesis.blocks[0].const, g_ema.synthesis.blocks[0].const)
    assert torch.equal(model.G_ema.mapping.w_avg, g_ema.mapping.w_avg)


def test_loader_needs_no_nvidia_modules_and_runs_no_source(tmp_path):
    g, d = _nets()
    src = _nvidia_pickle(tmp_path / "a.pkl", g, d)
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules
    with pytest.raises(ModuleNotFoundError):  # the plain pickle module would need NVIDIA's code
        pickle.load(open(src, "rb"))
    read(src)  # and the restricted reader does not
    assert "torch_utils" not in sys.modules


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_reduce_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "evil.pkl"
    g, d = _nets()
    with fl._fake_nvidia_modules(), open(src, "wb") as f:
        pickle.dump({"G_ema": fl.nvidia_generator(g), "payload": _Evil(marker)}, f)
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
        read(src)
    assert not marker.exists()
    proc = subprocess.run(
        [sys.executable, "scripts/import_checkpoint.py", f"src={src}", f"out={tmp_path / 'x.ckpt'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "system" in proc.stderr and "not on the allow-list" in proc.stderr
    assert not marker.exists() and not (tmp_path / "x.ckpt").exists()


class Generator2:  # a foreign class pickled by reference: an unknown global
    pass


def test_unknown_global_is_refused(tmp_path):
    src = tmp_path / "foreign.pkl"
    with open(src, "wb") as f:
        pickle.dump({"G_ema": Generator2()}, f)
    with pytest.raises(UnsafePickleError, match="test_import_checkpoint.Generator2"):
        read(src)


def test_hybrid_and_other_architectures_are_refused(tmp_path):
    """StyleGAN3 pickles import (tests/test_import_stylegan3.py); a StyleGAN2 synthesis with a StyleGAN3
    Fourier input is neither, and each reader names what it cannot represent."""
    g, d = _nets()
    rec = fl.nvidia_generator(g)
    rec.state["_modules"]["synthesis"].state["_modules"]["input"] = fl.Rec("SynthesisInput")
    with pytest.raises(UnsupportedNetworkError, match="SynthesisInput at synthesis.input, which gamut's StyleGAN2"):
        nvidia_convert(fl.as_records({"G_ema": rec}))
    src = tmp_path / "hybrid.pkl"
    fl.write_pickle(src, {"G_ema": rec})
    with pytest.raises(UnsupportedNetworkError, match="SynthesisBlock at synthesis.b4, which gamut's StyleGAN3"):
        read(src)
    rec = fl.nvidia_generator(g)
    for block in rec.state["_modules"]["synthesis"].state["_modules"].values():
        block.state["architecture"] = "resnet"
    with pytest.raises(UnsupportedNetworkError, match="architecture 'resnet'"):
        nvidia_convert(fl.as_records({"G_ema": rec}))
    drec = fl.nvidia_discriminator(d)
    for name in ("b16", "b8"):
        drec.state["_modules"][name].state["architecture"] = "orig"
    with pytest.raises(UnsupportedNetworkError, match="discriminator=fresh"):
        nvidia_convert(fl.as_records({"G_ema": fl.nvidia_generator(g), "D": drec}))
    imported = nvidia_convert(fl.as_records({"G_ema": fl.nvidia_generator(g), "D": drec}), discriminator="fresh")
    assert any("freshly initialised" in n for n in imported.notes)
    with pytest.raises(UnsupportedNetworkError, match="no G_ema"):
        nvidia_convert(fl.as_records({"G": rec}))


def test_parameter_counts_after_import_match_spec():
    """NVIDIA's layer formulas: 64 px, channel_base 16384, mapping 2 -> G 22.24M, D 23.41M."""
    g = Generator(z_dim=512, w_dim=512, resolution=(64, 64), channel_base=16384, map_depth=2)
    d = Discriminator(resolution=(64, 64), channel_base=16384)
    imported = nvidia_convert(
        fl.as_records(
            {
                "G_ema": fl.nvidia_generator(g, channel_base=16384, channel_max=512),
                "D": fl.nvidia_discriminator(d, channel_base=16384, channel_max=512),
            }
        )
    )
    model = build_module(imported)
    assert sum(p.numel() for p in model.G_ema.parameters()) == 22_243_608
    assert sum(p.numel() for p in model.D.parameters()) == 23_407_361


@pytest.mark.parametrize("with_extras", [True, False])
def test_rosinality_checkpoint_imports_with_the_right_names(tmp_path, with_extras):
    g, d = _nets()
    g_ema, _ = _nets(seed=7)
    data = {"g_ema": fl.rosinality_generator(g_ema)}
    if with_extras:
        data.update(
            g=fl.rosinality_generator(g),
            d=fl.rosinality_discriminator(d),
            latent_avg=g_ema.mapping.w_avg.clone(),
            g_optim={},
            d_optim={},
            args=argparse.Namespace(size=16, latent=16, n_mlp=2, channel_multiplier=2),
        )
    src = tmp_path / "050000.pt"
    torch.save(data, src)
    out, imported = import_checkpoint(src, tmp_path / "rosi.ckpt")
    assert imported.format == "rosinality"
    hp = imported.hparams
    arch = (hp["resolution"], hp["z_dim"], hp["map_depth"], hp["channel_base"], hp["channel_max"])
    assert arch == (16, 16, 2, 128, 16)
    model = load_module(out)
    if with_extras:
        assert imported.notes == [] and hp["mbstd_group"] == 4  # rosinality's fixed stddev_group
        d.epilogue.mbstd.group_size = 4
        _same_outputs(model, g_ema, d.requires_grad_(False))
        assert torch.equal(model.G.synthesis.blocks[1].conv0.weight, g.synthesis.blocks[1].conv0.weight)
    else:  # converted-from-TF files: g_ema only; w_avg estimated, G copied, D fresh
        assert len(imported.notes) == 3
        assert torch.equal(model.G.synthesis.blocks[2].torgb.weight, g_ema.synthesis.blocks[2].torgb.weight)
        assert model.G_ema.mapping.w_avg.abs().sum() > 0
        z = torch.randn(3, 16)
        with torch.no_grad():
            assert torch.allclose(
                model.G_ema.synthesis(model.G_ema.mapping(z), noise_mode="const"),
                g_ema.synthesis(g_ema.mapping(z), noise_mode="const"),
                atol=1e-6,
            )


def test_rosinality_file_with_code_is_refused(tmp_path):
    src = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "payload": _Evil(tmp_path / "pwned")}, src)
    with pytest.raises(ValueError, match="refused or unreadable"):
        read(src)
    assert not (tmp_path / "pwned").exists()


def test_cli_and_generate_seed_semantics(tmp_path):
    g, d = _nets()
    src = _nvidia_pickle(tmp_path / "net.pkl", g, d)
    out = tmp_path / "w" / "net.ckpt"

    def run(*a):
        return subprocess.run([sys.executable, *a], cwd=ROOT, capture_output=True, text=True, timeout=300)

    proc = run("scripts/import_checkpoint.py", f"src={src}", f"out={out}")
    assert proc.returncode == 0, proc.stderr
    assert "16x16" in proc.stdout and out.is_file() and out.with_suffix(".safetensors").is_file()
    again = run("scripts/import_checkpoint.py", f"src={src}", f"out={out}")
    assert again.returncode != 0 and "overwrite=true" in again.stderr
    proc = run("scripts/generate.py", f"ckpt={out}", "seeds=85", "trunc=0.7", f"out={tmp_path / 'img'}")
    assert proc.returncode == 0, proc.stderr
    # NVIDIA's gen_images.py: z = RandomState(seed).randn(1, z_dim); (x * 127.5 + 128).clamp(0, 255) -> uint8
    ref_g = Generator(map_depth=2, conv_clamp=256.0, **ARCH)
    ref_g.load_state_dict(g.state_dict())
    z = torch.from_numpy(np.random.RandomState(85).randn(1, 16)).float()
    with torch.no_grad():
        x = ref_g(z, psi=0.7, noise_mode="const")
    expected = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    from PIL import Image

    got = np.asarray(Image.open(tmp_path / "img" / "seed0085.png"))
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert (got != expected).mean() < 0.01


def test_finetune_starts_from_imported_weights(tmp_path, tiny_cfg, log_dir):
    from src.train import train

    g, d = _nets()
    ckpt, _ = import_checkpoint(_nvidia_pickle(tmp_path / "net.pkl", g, d), tmp_path / "net.ckpt")
    cfg = tiny_cfg(
        "experiment=finetune",
        f"ckpt_init={ckpt}",
        "data.resolution=32",
        "model.z_dim=512",
        "model.freeze_d=4",  # Freeze-D: the 32 px block's FromImage, conv0, conv1, skip
        "trainer.max_steps=0",
        run_name="ft",
    )
    train(cfg)
    run = log_dir / "finetune" / "ft"
    log = (run / "train.log").read_text()
    assert "data.resolution: 32 -> 16" in log and "model.conv_clamp: None -> 256.0" in log
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert torch.equal(saved["state_dict"]["G_ema.synthesis.blocks.1.conv0.weight"], g.synthesis.blocks[1].conv0.weight)
    assert saved["hyper_parameters"]["ema"]["rampup"] is None
    assert saved["hyper_parameters"]["augment"]["mode"] == "ada"  # the auto preset, as NVIDIA fine-tunes
    # relaunching the same run resumes it (ckpt_init then only fixes the architecture)
    train(
        tiny_cfg(
            "experiment=finetune",
            f"ckpt_init={ckpt}",
            "ckpt_path=last",
            "model.freeze_d=4",
            "trainer.max_steps=1",
            run_name="ft",
        )
    )
    after = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name in ("D.blocks.0.fromrgb.weight", "D.blocks.0.conv0.weight", "D.blocks.0.skip.weight"):
        assert torch.equal(after[name], saved["state_dict"][name]), name  # frozen
    assert not torch.equal(after["D.blocks.1.conv0.weight"], saved["state_dict"]["D.blocks.1.conv0.weight"])


def test_finetune_bad_input(tiny_cfg, tmp_path):
    from src.train import train
    from src.utils.validation import ConfigError

    with pytest.raises(ConfigError, match="ckpt_init is required by this experiment"):
        train(tiny_cfg("experiment=finetune"))
    with pytest.raises(ConfigError, match="no such file"):
        train(tiny_cfg("experiment=finetune", f"ckpt_init={tmp_path / 'nope.ckpt'}"))
    g, d = _nets()
    ckpt, _ = import_checkpoint(_nvidia_pickle(tmp_path / "net.pkl", g, d), tmp_path / "net.ckpt")
    with pytest.raises(ConfigError, match="colorspace=rgb"):
        train(tiny_cfg("experiment=finetune", f"ckpt_init={ckpt}", "colorspace=lab"))
