"""The benchmark tool (scripts/benchmark.py) at tiny sizes: loader, colorspace and the model subcommands."""

from __future__ import annotations

import pytest

from src.colorspaces import COLORSPACE_NAMES
from src.tools import benchmark


@pytest.mark.parametrize("source", ["folder", "zip"])
def test_loader_subcommand(source, capsys):
    out = benchmark.main(
        ["loader", f"source={source}", "resolution=16", "batch=4", "steps=3", "images=16", "warmup=1", "space=lab"]
    )
    assert out["what"] == "loader" and out["source"] == source and out["resolution"] == [16, 16]
    assert out["images_per_sec"] > 0 and out["timed_batches"] == 3 and out["colorspace"] == "lab"
    assert '"images_per_sec"' in capsys.readouterr().out


def test_loader_reads_a_given_root(tmp_path):
    from PIL import Image

    for k in range(4):
        Image.new("RGB", (8, 8), (k * 40, 0, 0)).save(tmp_path / f"{k}.png")
    out = benchmark.main(["loader", f"root={tmp_path}", "resolution=8", "batch=2", "steps=2", "warmup=0"])
    assert out["root"] == str(tmp_path) and out["source"] == "folder"


def test_colorspace_subcommand():
    out = benchmark.main(["colorspace", "resolution=8", "batch=2", "repeats=2", "warmup=0"])
    assert [r["space"] for r in out["results"]] == list(COLORSPACE_NAMES)
    for r in out["results"]:
        assert r["encode_ms"] >= 0 and r["encode_decode_ms"] >= r["encode_ms"]
        assert "skimage_cpu_ms" in r
    one = benchmark.main(["colorspace", "space=hsv", "resolution=8", "batch=2", "repeats=1"])
    assert [r["space"] for r in one["results"]] == ["hsv"]
    with pytest.raises(ValueError, match="space='cmyk'"):
        benchmark.main(["colorspace", "space=cmyk"])


@pytest.mark.parametrize(
    "argv",
    [
        ["stylegan2", "channel_base=128", "channel_max=16", "z_dim=16", "map_depth=1"],
        ["stylegan2", "channel_base=128", "channel_max=16", "z_dim=16", "map_depth=1", "augment=ada"],
        ["segan", "mode=3", "channel_base=128", "channel_max=16", "z_dim=16", "map_depth=1"],
        ["chromagan", "width=0.0625"],
    ],
)
def test_model_subcommands_time_real_iterations(argv):
    """Each model subcommand fits through a real Trainer and reports the timed window and sizes."""
    size = ["resolution=16", "batch=2"] if argv[0] != "chromagan" else ["resolution=32", "batch=2"]
    out = benchmark.main([*argv, *size, "steps=1", "warmup=1"])
    assert out["model"] == argv[0] and out["timed_iterations"] >= 1
    assert out["sec_per_iteration"] > 0 and out["images_per_sec"] == pytest.approx(
        2 / out["sec_per_iteration"], rel=1e-2
    )
    assert out["params_G"] > 0 and out["params_D"] > 0
    if argv[0] == "segan":
        assert out["mode"] == 3
    if "augment=ada" in argv:
        assert (out["augment"], out["augment_p"], out["augment_pipeline"]) == ("ada", 0.5, "bgc")
    if argv[0] == "chromagan":
        assert out["teacher"] is False and out["resolution"] == [32, 32]
    phases = {"G", "D"} if argv[0] == "chromagan" else {"Gmain", "Greg", "Dmain", "Dreg"}
    assert phases <= set(out["phases"]) and all(out["phases"][k]["gflop"] > 0 for k in phases)
