"""NVIDIA's metric set: names and protocols, a metric added by one registration, precision/recall
against a brute-force k-NN and on sets whose answer is known, the Inception Score formula, feature
order across ranks, the VGG-16 feature networks, and the progress lines of long evaluations."""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision

from src.colorspaces import get_colorspace
from src.metrics.formulas import inception_score
from src.metrics.inception import FeatureBank
from src.metrics.precision_recall import kth_neighbour_radii, precision_recall
from src.metrics.progress import Progress, duration
from src.metrics.protocols import higher_is_better, parse_metrics, protocol, result_keys
from src.metrics.registry import Computed, MetricContext, Network, register_metric, unregister_metric
from src.metrics.suite import MetricSuite, check_weights, flatten
from src.metrics.vgg16 import VGG16Features
from src.metrics.vgg16_nvidia import NvidiaLPIPS, NvidiaVGG16Features
from src.pretrained.weights import WEIGHTS, MissingWeightsError
from tests.nvidia_standins import save_nvidia_vgg16

# ------------------------------------------------------------------------------------------------
# names and protocols (stylegan2-ada-pytorch metrics/metric_main.py)


def test_nvidia_names_carry_nvidias_protocols():
    fid = protocol("fid50k_full")
    assert (fid.kind, fid.num_gen, fid.max_real) == ("fid", 50000, None)  # every real
    kid = protocol("kid50k_full")
    assert (kid.kind, kid.num_gen, kid.max_real) == ("kid", 50000, 1_000_000)
    pr = protocol("pr50k3_full")
    assert (pr.kind, pr.num_gen, pr.max_real, pr.nhood) == ("pr", 50000, 200_000, 3)
    is_ = protocol("is50k")
    assert (is_.kind, is_.num_gen, is_.splits, is_.needs_reals) == ("is", 50000, 10, False)
    ppl = protocol("ppl2_wend")
    assert (ppl.space, ppl.epsilons, ppl.num_samples, ppl.crop) == ("wend", (1e-4,), 50000, False)
    legacy = protocol("fid50k")  # NVIDIA's legacy name: the first 50k reals only
    assert (legacy.num_gen, legacy.max_real) == (50000, 50000)
    assert (protocol("fid10k_full").num_gen, protocol("pr10k5").nhood, protocol("pr10k5").max_real) == (10000, 5, 10000)
    assert protocol("fid500").num_gen == 500 and protocol("pr1003").num_gen == 100
    custom = protocol("fid", {"num_gen": 7, "num_real": 5})
    assert (custom.num_gen, custom.max_real, custom.configurable) == (7, 5, True)
    # metric_main.py: every *_full metric sets xflip=False on the reals; only the legacy names read
    # the data set as mirrored (and gamut's configurable names follow the *_full rule)
    mirrored = {
        n: protocol(n).mirror_reals
        for n in ("fid50k_full", "kid50k_full", "pr50k3_full", "fid50k", "kid50k", "pr50k3", "pr50k3_full_torchvision")
    }
    assert mirrored == {
        "fid50k_full": False,
        "kid50k_full": False,
        "pr50k3_full": False,
        "fid50k": True,
        "kid50k": True,
        "pr50k3": True,
        "pr50k3_full_torchvision": False,
    }
    assert not custom.mirror_reals


def test_result_keys_and_directions():
    ps = parse_metrics(["fid50k_full", "kid50k_full", "pr50k3_full", "is50k", "ppl2_wend"])
    assert result_keys(ps) == [
        "fid50k_full",
        "kid50k_full",
        "kid50k_full_std",
        "pr50k3_full_precision",
        "pr50k3_full_recall",
        "is50k_mean",
        "is50k_std",
        "ppl2_wend",
    ]
    assert result_keys(parse_metrics(["fid10k_full"]), intra_fid=True) == ["fid10k_full", "fid10k_full_intra"]
    assert result_keys(parse_metrics(["ppl_wend"], settings={"ppl": {"epsilons": [1e-4, 1e-2]}})) == [
        "ppl_wend",
        "ppl_wend_eps0.01",
    ]
    assert [higher_is_better(k) for k in ("fid50k_full", "kid5k", "ppl2_wend", "is50k_mean", "pr50k3_full_recall")] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_an_unknown_metric_lists_the_known_ones():
    with pytest.raises(ValueError) as e:
        parse_metrics(["fid50k_ful"], key="callbacks.metrics.metrics")
    msg = str(e.value)
    assert msg.startswith("callbacks.metrics.metrics: unknown metric 'fid50k_ful'")
    for name in ("fid50k_full", "kid50k_full", "pr50k3_full", "is50k", "ppl2_wend", "fid10k_full"):
        assert name in msg


# ------------------------------------------------------------------------------------------------
# a new metric: one function plus one registration (docs/evaluation.md, "Adding a metric")


DOCS = Path(__file__).resolve().parents[1] / "docs" / "evaluation.md"


def docs_example() -> str:
    """The module docs/evaluation.md shows under "Adding a metric" (its first Python block)."""
    section = DOCS.read_text().split("\n## Adding a metric\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def mean_pixel():
    """The worked example of docs/evaluation.md run as the module ``src/metrics/kinds/mean_pixel.py``
    would be (one function, one registration, nothing else touched); forgotten again afterwards."""
    module = ModuleType("mean_pixel")
    module.__file__ = str(DOCS)  # its weights_file: any existing file
    exec(compile(docs_example(), f"{DOCS}:Adding a metric", "exec"), module.__dict__)
    yield module
    unregister_metric("mean_pixel")


class FlatImages(torch.utils.data.Dataset):
    """``n`` reals of one grey level."""

    def __init__(self, value: int, n: int = 6) -> None:
        self.value, self.n, self.resolution = value, n, (8, 8)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.full((3, 8, 8), self.value, dtype=torch.uint8), "label": torch.tensor(0)}


def _flat_generator(level: float) -> SimpleNamespace:
    """A module whose G_ema draws flat images of ``level`` in model space ([-1, 1])."""
    return SimpleNamespace(
        G_ema=SimpleNamespace(z_dim=4),
        sample=lambda z, labels, psi, noise_mode: torch.full((z.shape[0], 3, 8, 8), level),
        device=torch.device("cpu"),
        num_classes=0,
        colorspace=get_colorspace("rgb"),
    )


def test_a_registered_metric_runs_end_to_end_through_the_suite(mean_pixel, tmp_path):
    # its names, keys and direction come from the one registration
    p = protocol("mean_pixel4")
    assert (p.kind, p.num_gen, p.max_real, p.needs_reals, p.network) == ("mean_pixel", 4, 4, True, "mean_rgb")
    assert protocol("mean_pixel1") is None and protocol("mean_pixel") is None  # fewer than 2 images, no count
    assert protocol("mean_pixel10k_full").max_real is None  # _full: every real
    assert result_keys(parse_metrics("mean_pixel4,fid10k_full")) == ["mean_pixel4", "fid10k_full"]
    assert higher_is_better("metrics/mean_pixel4") is False
    with pytest.raises(
        ValueError, match=r"unknown metric 'mean_pixl4'; known: fid50k_full, .*, mean_pixel10k, and any"
    ):
        parse_metrics(["mean_pixl4"])
    check_weights(["mean_pixel4"], tmp_path)  # it needs no file

    # generated: model-space 0 -> display 0.5 -> uint8 128; reals: 100
    suite = MetricSuite(["mean_pixel4"], weights_dir=tmp_path, cache_dir=tmp_path / "cache", batch_size=3)
    module, reals = _flat_generator(0.0), FlatImages(100)
    assert suite.result_keys() == ["mean_pixel4"]
    assert suite.plan(reals, False, "cpu") == [
        "mean_pixel4: 4 generated (psi 1, noise random) vs 4 reals, mean RGB, on cpu"
    ]
    results = suite.run(module, reals)
    assert flatten(results) == {"mean_pixel4": pytest.approx(28.0)}
    record = results["mean_pixel4"]
    assert record["protocol"]["num_gen"] == 4 and record["protocol"]["num_real"] == 4
    assert record["protocol"]["network"] == "mean RGB" and record["protocol"]["real_cache"]["hit"] is False
    [cached] = (tmp_path / "cache").iterdir()  # the reals' features, under the network's name
    assert cached.name.startswith("mean_rgb-flatimages-") and "-rgb-n4-" in cached.name
    again = MetricSuite(["mean_pixel4"], weights_dir=tmp_path, cache_dir=tmp_path / "cache").run(module, reals)
    assert again["mean_pixel4"]["protocol"]["real_cache"]["hit"] is True and flatten(again) == flatten(results)


def test_the_registry_refuses_a_second_kind_and_a_name_two_kinds_claim(mean_pixel):
    net = Network("other", load=lambda weights_dir, settings: mean_pixel.MeanRGB(), label="other")

    def other(ctx: MetricContext) -> Computed:
        return Computed({})

    with pytest.raises(ValueError, match="metric kind 'mean_pixel' is registered twice"):
        register_metric("mean_pixel", r"mp(?P<n>\d+)", network=net)(other)
    register_metric("mean_pixel_too", r"mean_pixel(?P<n>\d+)", network=net)(other)
    try:
        with pytest.raises(ValueError, match="'mean_pixel4' matches the names of mean_pixel and mean_pixel_too"):
            protocol("mean_pixel4")
    finally:
        unregister_metric("mean_pixel_too")
    assert protocol("mean_pixel4").kind == "mean_pixel"


# ------------------------------------------------------------------------------------------------
# precision and recall (Kynkäänniemi et al. 2019)


def _brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """The paper's definition written out with loops: f(probe, set) = 1 if inside any k-NN ball."""

    def radii(s):
        out = []
        for i in range(len(s)):
            d = sorted(float(np.linalg.norm(s[i] - s[j])) for j in range(len(s)) if j != i)
            out.append(d[k - 1])
        return out

    def share(probes, s, r):
        inside = 0
        for x in probes:
            inside += any(np.linalg.norm(x - s[j]) <= r[j] for j in range(len(s)))
        return inside / len(probes)

    return share(fake, real, radii(real)), share(real, fake, radii(fake))


@pytest.mark.parametrize("k", [1, 3])
def test_precision_recall_matches_a_brute_force_knn(k):
    g = torch.Generator().manual_seed(k)
    real = torch.randn(40, 5, generator=g, dtype=torch.float64)
    fake = torch.randn(30, 5, generator=g, dtype=torch.float64) * 1.3 + 0.4
    expected = _brute_force(real.numpy(), fake.numpy(), k)
    got = precision_recall(real, fake, k=k, block=7)  # blocks smaller than the sets: the split must not matter
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got[0] < 1 and 0 < got[1] < 1  # not a degenerate case


def test_kth_neighbour_excludes_the_sample_itself():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert kth_neighbour_radii(points, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert kth_neighbour_radii(points, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="k=4 needs more than 4 samples"):
        kth_neighbour_radii(points, 4)


def test_orientation_fakes_covering_half_the_real_modes():
    """Fakes from 5 of 10 well-separated real modes: precision ~ 1 (all realistic), recall ~ 0.5."""
    # 2-D modes with 500 samples each: k-NN balls cover a mode well (in high dimensions with few
    # samples the estimate falls below 1 even for identical distributions, as the paper notes)
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 2, generator=g) * 100
    real = centres.repeat_interleave(500, 0) + torch.randn(5000, 2, generator=g)
    fake = centres[:5].repeat_interleave(500, 0) + torch.randn(2500, 2, generator=g)
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.95
    assert 0.45 < recall < 0.52
    swapped = precision_recall(fake, real, k=3)  # with the sets swapped the two numbers trade places
    assert 0.45 < swapped[0] < 0.52 and swapped[1] > 0.95


# ------------------------------------------------------------------------------------------------
# Inception Score (Salimans et al. 2016)


def test_inception_score_formula_on_known_softmax():
    confident = torch.eye(8).repeat(5, 1) * 0.999 + 0.001 / 8  # 40 images, 8 classes equally used
    mean, std = inception_score(confident, splits=5)
    p = confident[:8].double()
    py = p.mean(0)
    expected = math.exp(float((p * (p.log() - py.log())).sum(1).mean()))
    # float32, as NVIDIA's metrics/inception_score.py computes it
    assert mean == pytest.approx(expected, rel=1e-6) and std == pytest.approx(0.0, abs=1e-5)
    assert mean == pytest.approx(8, rel=0.02)  # near the number of classes
    uniform = torch.full((20, 10), 0.1)
    assert inception_score(uniform, splits=2) == pytest.approx((1.0, 0.0))
    one_class = torch.eye(10)[torch.zeros(20, dtype=torch.long)]  # exact zeros: 0 log 0 = 0
    assert inception_score(one_class, splits=2)[0] == pytest.approx(1.0)
    # random probabilities against NVIDIA's numpy code (float32 arrays), split by split
    probs = torch.distributions.Dirichlet(torch.ones(6)).sample((33,)).float()
    scores = []
    for i in range(3):
        part = probs[i * 33 // 3 : (i + 1) * 33 // 3].numpy()
        kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
        scores.append(np.exp(kl.sum(1).mean()))
    assert inception_score(probs, 3) == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-5)
    with pytest.raises(ValueError, match="10 splits needs at least 10 images"):
        inception_score(probs[:5])


# ------------------------------------------------------------------------------------------------
# features in image order, whatever produced them


def test_feature_bank_returns_rows_in_image_order():
    bank = FeatureBank(num_features=2)
    bank.update(torch.tensor([[1.0, 1.0], [3.0, 3.0]]), torch.tensor([1, 3]))  # what rank 1 of 2 made
    bank.update(torch.tensor([[0.0, 0.0], [2.0, 2.0]]), torch.tensor([0, 2]))  # rank 0
    assert bank.compute()[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    plain = FeatureBank(num_features=1)
    plain.update(torch.tensor([[5.0], [4.0]]))
    plain.update(torch.tensor([[3.0]]))
    assert plain.compute().flatten().tolist() == [5.0, 4.0, 3.0]  # no index: arrival order


# ------------------------------------------------------------------------------------------------
# VGG-16 feature networks


def test_vgg16_features_are_torchvisions_fc2_after_relu(tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.vgg16(weights=None)
    torch.save(net.state_dict(), tmp_path / WEIGHTS["vgg16"].filename)
    features = VGG16Features(tmp_path)
    images = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    out = features(images)
    assert out.shape == (2, 4096) and out.dtype == torch.float32 and (out >= 0).all()
    net.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():  # at 224 px the resize is the identity: the rest is torchvision's classifier[:5]
        x = net.avgpool(net.features((images.float() / 255 - mean) / std)).flatten(1)
        expected = net.classifier[:5](x)
    assert torch.allclose(out, expected, atol=1e-4, rtol=1e-4)
    assert VGG16Features(tmp_path)(torch.randint(0, 256, (1, 3, 32, 48), dtype=torch.uint8)).shape == (1, 4096)


def test_nvidias_torchscript_vgg16_is_used_as_is(tmp_path):
    """pr* and PPL call NVIDIA's vgg16.pt exactly as stylegan2-ada-pytorch does: return_features=True
    on uint8 images; resize_images=False, return_lpips=True on [0, 255] floats, distance = squared
    difference of the vectors, summed."""
    with pytest.raises(MissingWeightsError, match="vgg16.pt not found.*nvlabs-fi-cdn.nvidia.com"):
        NvidiaVGG16Features(tmp_path)
    save_nvidia_vgg16(tmp_path / "vgg16.pt", seed=4)
    reference = torch.jit.load(str(tmp_path / "vgg16.pt"))
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    assert torch.equal(NvidiaVGG16Features(tmp_path)(images), reference(images, return_features=True))
    x0, x1 = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    f0 = reference((x0 + 1) * 127.5, resize_images=False, return_lpips=True)
    f1 = reference((x1 + 1) * 127.5, resize_images=False, return_lpips=True)
    lpips = NvidiaLPIPS(tmp_path)
    assert torch.allclose(lpips(x0, x1), (f0 - f1).square().sum(dim=1), rtol=1e-5)
    assert torch.equal(lpips(x0, x0), torch.zeros(2))
    (tmp_path / "vgg16.pt").write_text("<html>not found</html>")
    with pytest.raises(MissingWeightsError, match="not a TorchScript archive.*delete it to fetch it again"):
        NvidiaVGG16Features(tmp_path)


def test_pr_names_carry_their_feature_network():
    """NVIDIA's names use NVIDIA's vgg16.pt; the torchvision variant has a name of its own; the
    removed pr.feature_net setting is refused, naming the replacement."""
    nvidia, tv = parse_metrics(["pr50k3_full", "pr50k3_full_torchvision"])
    assert (nvidia.kind, nvidia.network, nvidia.max_real) == ("pr", "vgg16", 200_000)
    assert (tv.kind, tv.network, tv.max_real) == ("pr_torchvision", "vgg16_torchvision", 200_000)
    assert tv.result_keys() == ["pr50k3_full_torchvision_precision", "pr50k3_full_torchvision_recall"]
    assert higher_is_better("pr50k3_full_torchvision_recall")
    with pytest.raises(ValueError, match="pr.feature_net='nvidia' is no longer a setting.*pr50k3_full_torchvision"):
        MetricSuite(["pr50k3_full"], "/nonexistent", pr={"feature_net": "nvidia"})


# ------------------------------------------------------------------------------------------------
# progress of long work


def test_progress_writes_tick_lines_when_not_a_terminal(caplog, monkeypatch):
    clock = iter(range(0, 1000, 20))  # each call of perf_counter advances 20 s
    monkeypatch.setattr("src.metrics.progress.time.perf_counter", lambda: float(next(clock)))
    with caplog.at_level(logging.INFO, logger="gamut.metrics"):
        bar = Progress("fid50k_full generated", 100, stream=io.StringIO(), interval=30)
        for _ in range(4):
            bar.update(25)
        bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert any("fid50k_full generated: 50/100 images (50%)" in line and "ETA" in line for line in lines)
    assert "100/100 images (100%)" in lines[-1] and "took" in lines[-1]
    silent = Progress("x", 10, enabled=False)
    silent.update(10)
    assert silent.done == 0
    assert [duration(s) for s in (5, 185, 7440)] == ["5s", "3m05s", "2h04m"]
