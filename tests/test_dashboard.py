"""`make dashboard` serves the local MLflow store on localhost with the run's metrics and images."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from src.train import train
from tests.browser import chromium, free_port, needs_chromium
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


@contextlib.contextmanager
def _dashboard(log_dir: Path):
    """``make dashboard`` on a free port for ``log_dir``; yields ``(base_url, experiments)`` once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        ["make", "-s", "dashboard", f"PORT={port}", f"LOG_DIR={log_dir}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                exps = _post(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 10})["experiments"]
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(1)
        yield base, exps
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_make_dashboard_serves_the_run(tiny_cfg, log_dir):
    """The run's metrics, parameters and images; with ADA on, its p and r_t over images seen."""
    overrides = ["trainer.max_steps=3", "callbacks.sample_grid.every_kimg=0.004", "model.augment.mode=ada"]
    train(tiny_cfg(*overrides, "model.augment.interval=1", logger="mlflow"))
    with _dashboard(log_dir) as (base, exps):
        exp = next(e for e in exps if e["name"] == "quickstart")
        runs = _post(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
        assert len(runs) == 1
        run = runs[0]
        assert {m["key"] for m in run["data"]["metrics"]} >= {
            "Loss/G",
            "Loss/D",
            "progress/kimg",
            "augment/p",
            "augment/rt",
        }
        q = urllib.parse.urlencode({"run_id": run["info"]["run_id"], "metric_key": "augment/rt"})
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/metrics/get-history?{q}", timeout=10) as r:
            history = json.load(r)["metrics"]
        assert [h["step"] for h in history] == [4, 8, 12]  # one r_t per iteration, at images seen
        assert any(p["key"] == "model/loss/r1_gamma" for p in run["data"]["params"])
        run_id = run["info"]["run_id"]
        with urllib.request.urlopen(
            f"{base}/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=images", timeout=10
        ) as r:
            files = [f["path"] for f in json.load(r)["files"] if f["path"].endswith(".png")]
        assert files
        q = urllib.parse.urlencode({"path": files[0], "run_uuid": run_id})
        with urllib.request.urlopen(f"{base}/get-artifact?{q}", timeout=10) as r:
            assert r.read(8) == b"\x89PNG\r\n\x1a\n"


def _chart_points(dom: str, metric: str) -> list[tuple[float, float]]:
    """The marker positions ``(x, y)`` (SVG pixels) of the data trace of the chart card titled ``metric``
    in an MLflow charts page dumped by Chromium; fails if that card has no drawn plot."""
    cards = dom.split('data-testid="experiment-view-compare-runs-card"')[1:]
    card = next((c for c in cards if re.search(rf'<h4[^>]*title="{re.escape(metric)}"', c)), None)
    assert card is not None, f"no chart card for {metric}"
    assert "js-plotly-plot" in card and 'class="main-svg"' in card, f"the {metric} card has no plot"
    trace = re.search(r'<g class="trace scatter[^"]*"[^>]*>(.*?)<g class="text">', card, re.S)
    assert trace, f"the {metric} plot has no trace"
    line = re.search(r'class="js-line" d="(M[^"]+)"', trace.group(1))
    assert line and "L" in line.group(1), f"the {metric} trace has no line"
    return [
        (float(x), float(y))
        for x, y in re.findall(r'class="point" transform="translate\(([-\d.e]+),([-\d.e]+)\)"', trace.group(1))
    ]


@pytest.mark.slow
@needs_chromium
def test_dashboard_in_headless_chromium(tiny_cfg, log_dir):
    """The MLflow UI rendered by headless Chromium shows the run, a chart of a logged metric drawn
    from its data, and a sample image.

    MLflow draws a chart card only once it is in view (an IntersectionObserver). Under
    ``--virtual-time-budget`` headless Chromium produces no frames unless told to
    (``--run-all-compositor-stages-before-draw``), so without that flag the observer never fires
    and the cards stay spinners (what ``--disable-gpu`` alone, or SwiftShader GL, gives: charts
    only now and then). With it and a window tall enough for every chart section, the run's
    "Model metrics" tab has the Loss/G plot (plotly SVG) with one marker per logged value, whose
    heights order as the values do.
    """
    train(tiny_cfg("trainer.max_steps=3", "callbacks.sample_grid.every_kimg=0.004", logger="mlflow"))
    with _dashboard(log_dir) as (base, exps):
        exp = next(e for e in exps if e["name"] == "quickstart")
        run = _post(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"][0]
        run_id = run["info"]["run_id"]
        run_url = f"{base}/#/experiments/{exp['experiment_id']}/runs/{run_id}"

        def dom(url: str) -> str:
            out = subprocess.run(
                [
                    chromium(),
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--run-all-compositor-stages-before-draw",
                    "--window-size=1600,3000",
                    "--virtual-time-budget=20000",
                    "--dump-dom",
                    url,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            return out.stdout

        page = dom(run_url)
        assert run["info"]["run_name"] in page and "Loss/G" in page

        q = urllib.parse.urlencode({"run_id": run_id, "metric_key": "Loss/G"})
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/metrics/get-history?{q}", timeout=10) as r:
            values = [m["value"] for m in sorted(json.load(r)["metrics"], key=lambda m: m["step"])]
        assert len(values) == 3
        points = _chart_points(dom(f"{run_url}/model-metrics"), "Loss/G")
        assert len(points) == len(values), points
        xs, ys = zip(*points)
        assert list(xs) == sorted(xs) and len(set(xs)) == len(xs)  # one marker per step, left to right
        by_value = sorted(range(len(values)), key=lambda i: values[i])
        assert by_value == sorted(range(len(ys)), key=lambda i: -ys[i])  # SVG y grows downwards

        q = urllib.parse.urlencode({"run_id": run_id, "path": "images"})
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/artifacts/list?{q}", timeout=10) as r:
            png = next(f["path"] for f in json.load(r)["files"] if f["path"].endswith(".png"))
        preview = dom(f"{run_url}/artifacts/{png}")
        assert f'<img alt="{png}"' in preview


@pytest.mark.slow
@needs_chromium
def test_a_sweep_is_one_parent_run_with_its_jobs_in_the_mlflow_ui(log_dir):
    """A two-job ``-m`` sweep in the MLflow UI (headless Chromium): the experiment's runs table lists
    one run, the sweep's parent ``sw``; expanding it shows its two jobs ``sw/0`` and ``sw/1``."""
    playwright = pytest.importorskip("playwright.sync_api")
    cmd = [sys.executable, "-m", "src.train", "-m", *TINY, "logger=mlflow", "run_name=sw", "trainer.max_steps=2"]
    cmd += ["callbacks.sample_grid.every_kimg=1", "callbacks.checkpoint.every_kimg=1", "data.batch_size=4,8"]
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "GAMUT_LOG_DIR": str(log_dir)}, capture_output=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with _dashboard(log_dir) as (base, exps):
        exp = next(e for e in exps if e["name"] == "quickstart")
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1200})
                page.goto(f"{base}/#/experiments/{exp['experiment_id']}/runs")
                page.get_by_role("link", name="sw", exact=True).wait_for(timeout=60_000)
                jobs = [page.get_by_role("link", name=f"sw/{j}", exact=True) for j in (0, 1)]
                assert [j.count() for j in jobs] == [0, 0]  # nested under the parent, collapsed
                # the expander of the parent's row (MLflow's run-name cell)
                page.locator('button[data-component-id$="runnamecellrenderer.tsx_46"]').first.click()
                for j in jobs:
                    j.wait_for(timeout=30_000)
                assert page.get_by_role("link", name="sw", exact=True).count() == 1
            finally:
                browser.close()
