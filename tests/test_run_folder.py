"""The run folder's names, declared once (src/utils/run_folder.py), and a sweep job's bookkeeping
(src/sweeps/jobs.py, report.py, objective.py) without training anything.

The declaration test parses every ``.py`` file under ``src/`` and ``hydra_plugins/`` with :mod:`ast`
(no code runs): a marker name assigned anywhere but ``src/utils/run_folder.py``, or written as a
literal path component (``run_dir / "last.ckpt"``) or compared as one (``name == "last.ckpt"``),
fails naming ``file:line``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.callbacks.limits import Limits
from src.callbacks.metrics import GeneratorMetrics
from src.sweeps.jobs import finished, read_done, write_done, write_failed, write_pruned
from src.sweeps.objective import check_optimized_metric, metric_keys
from src.sweeps.report import SweepReport
from src.utils import run_folder
from src.utils.validation import ConfigError

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "src" / "utils" / "run_folder.py"
#: every name the module declares, by value
MARKERS = {getattr(run_folder, n): n for n in run_folder.__all__ if n.isupper()}


def _python_files() -> list[Path]:
    return sorted(p for d in ("src", "hydra_plugins") for p in (ROOT / d).rglob("*.py"))


def _literal_markers(path: Path) -> list[tuple[str, int, str]]:
    """``(how, line, name)`` for every marker-name literal that is assigned, joined into a path or compared."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            how, values = "assigned", [node.value]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            how, values = "a path component", [node.left, node.right]
        elif isinstance(node, ast.Compare):
            how, values = "compared", [node.left, *node.comparators]
        else:
            continue
        for v in values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value in MARKERS:
                found.append((how, node.lineno, v.value))
    return found


def test_the_module_declares_each_name_once_with_a_distinct_value():
    assert len(MARKERS) == len([n for n in run_folder.__all__ if n.isupper()])  # no two names share a value
    assigned = [(line, name) for how, line, name in _literal_markers(HOME) if how == "assigned"]
    assert sorted(name for _, name in assigned) == sorted(MARKERS)


def test_each_marker_name_is_defined_exactly_once_in_src_and_hydra_plugins():
    problems = []
    for path in _python_files():
        if path == HOME:
            continue
        for how, line, name in _literal_markers(path):
            problems.append(
                f"{path.relative_to(ROOT)}:{line}: {name!r} {how}; import "
                f"{MARKERS[name]} from src.utils.run_folder instead"
            )
    assert not problems, "\n".join(problems)


def test_run_folder_imports_nothing_from_gamut():
    tree = ast.parse(HOME.read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and (m == "src" or m.startswith("src."))]


def test_paths_and_empty_folders(tmp_path):
    run = tmp_path / "logs" / "train" / "r"
    assert run_folder.last_checkpoint(run) == run / "checkpoints" / "last.ckpt"
    assert run_folder.run_dir_of(run / "checkpoints" / "kimg000001.000.ckpt") == run
    assert run_folder.run_dir_of(tmp_path / "weights.ckpt") is None
    (run / "sub").mkdir(parents=True)
    run_folder.remove_if_empty(run / "sub", tmp_path / "logs")  # empty up to logs/: all removed
    assert (tmp_path / "logs").is_dir() and not (tmp_path / "logs" / "train").exists()
    (run / "sub").mkdir(parents=True)
    (run / "train.log").write_text("kept")
    run_folder.remove_if_empty(run / "sub", tmp_path / "logs")  # stops at a folder with a file
    assert not (run / "sub").exists() and (run / "train.log").read_text() == "kept"


def test_done_failed_and_pruned_markers(tmp_path):
    assert read_done(tmp_path) is None and finished(tmp_path, Limits(max_steps=3)) is None
    write_failed(tmp_path, RuntimeError("boom"))
    assert (tmp_path / "failed").read_text().startswith("RuntimeError: boom\noverrides: \n")
    write_done(tmp_path, iteration=3, kimg=0.012, metrics={"fid": 1.5})
    assert not (tmp_path / "failed").exists()  # a finished run is no longer failed
    record = json.loads((tmp_path / "done").read_text())
    assert record["iteration"] == 3 and record["kimg"] == 0.012 and record["metrics"] == {"fid": 1.5}
    assert finished(tmp_path, Limits(max_steps=3)) == record
    assert finished(tmp_path, Limits(max_steps=4)) is None  # longer now: not finished
    assert finished(tmp_path, Limits(max_kimg=0.012)) == record
    assert finished(tmp_path, Limits()) is None  # no length: a relaunch continues it
    write_pruned(tmp_path, RuntimeError("trial 2 pruned"))
    assert (tmp_path / "pruned").read_text() == "trial 2 pruned\n"


def test_sweep_report_lists_failed_jobs(tmp_path, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "sweeper": {"_target_": "basic"}}})
    for n in (0, 1, 10):
        (tmp_path / str(n)).mkdir()
    SweepReport().on_multirun_end(config)  # nothing failed
    write_failed(tmp_path / "10", ValueError("bad value"))
    with pytest.raises(SystemExit) as e:
        SweepReport().on_multirun_end(config)
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "1 of 3 job(s) failed" in err and "job 10: ValueError: bad value" in err


class LoudMetrics(GeneratorMetrics):
    """A user's metrics callback: a subclass counts as the metrics callback too."""


def _cfg(callbacks: dict, optimized_metric: str | None = None):
    return OmegaConf.create(
        {"callbacks": callbacks, "model": {"_target_": "collections.OrderedDict"}, "optimized_metric": optimized_metric}
    )


def test_the_metrics_callback_is_found_by_its_class_not_its_name():
    target = "src.callbacks.metrics.GeneratorMetrics"
    cfg = _cfg({"my_evals": {"_target_": target, "metrics": ["fid50k_full", "kid50k_full"], "every_kimg": 5}})
    assert metric_keys(cfg) == ["fid50k_full", "kid50k_full", "kid50k_full_std"]
    mine = {"_target_": f"{__name__}.LoudMetrics", "metrics": ["is50k"], "every_kimg": 5}
    assert metric_keys(_cfg({"loud": mine})) == ["is50k_mean", "is50k_std"]
    # a name that merely ends like the class is not the metrics callback; a missing one is instantiation's to report
    other = {"_target_": "tests.nowhere.GeneratorMetrics", "metrics": ["fdi"], "every_kimg": 5}
    assert metric_keys(_cfg({"metrics": other})) == []
    off = {"_target_": target, "metrics": ["fid50k_full"], "every_kimg": 0}
    assert metric_keys(_cfg({"m": off})) == []  # off: computes nothing ...
    with pytest.raises(ConfigError, match="callbacks.m.metrics: unknown metric 'fdi'"):
        metric_keys(_cfg({"m": {**off, "metrics": ["fdi"]}}))  # ... but its names are checked
    with pytest.raises(ConfigError, match="optimized_metric='is50k' is not computed by this run"):
        check_optimized_metric(_cfg({"my_evals": {**off, "every_kimg": 5}}, "is50k"))


def test_a_function_target_among_the_callbacks_is_skipped_quietly(caplog, capsys):
    """src/conf/callbacks/default.yaml builds the progress callback with a factory function: looking for the
    metrics callback must pass over it without an error line (hydra's get_class logs one)."""
    factory = {"_target_": "src.callbacks.progress.make_progress"}
    with caplog.at_level("DEBUG"):
        assert metric_keys(_cfg({"progress": factory})) == []
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")], caplog.records
    assert "Error getting class" not in capsys.readouterr().err


def test_launch_records_are_numbered_and_the_latest_written_one_is_found(tmp_path):
    """``.hydra/`` for the first launch, ``.hydra/resume-<k>/`` after; a resume folder left without its
    config (a launch killed before writing it) is skipped when looking for the latest launch's config."""
    hydra_dir = tmp_path / ".hydra"
    assert run_folder.launch_dirs(tmp_path) == [] and run_folder.next_launch_dir(tmp_path) == hydra_dir
    assert run_folder.latest_launch_config(tmp_path) == hydra_dir / "config.yaml"  # absent: the caller checks
    for k, folder in enumerate([hydra_dir, hydra_dir / "resume-1"]):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(f"launch: {k}\n")
        assert run_folder.latest_launch_config(tmp_path) == folder / "config.yaml"
    assert run_folder.next_launch_dir(tmp_path) == hydra_dir / "resume-2"
    (hydra_dir / "resume-2").mkdir()  # killed before its config was written
    assert run_folder.launch_dirs(tmp_path) == [hydra_dir, hydra_dir / "resume-1", hydra_dir / "resume-2"]
    assert run_folder.next_launch_dir(tmp_path) == hydra_dir / "resume-3"
    assert run_folder.latest_launch_config(tmp_path) == hydra_dir / "resume-1" / "config.yaml"
