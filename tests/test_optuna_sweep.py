"""gamut's Optuna sweeper (hydra_plugins/gamut_optuna_sweeper) and a sweep job's side (src/sweeps/optuna.py).

- the search space: each syntax of ``hydra.sweeper.params`` and of command-line sweeps maps to its
  Optuna distribution, and a bad one stops the launch with one line naming the key;
- how a job's outcome becomes a trial state (COMPLETE, PRUNED, FAIL);
- the sweep itself, through a trivial Hydra app (tests/optuna_task.py) and the basic launcher: the
  best trial, a relaunch that continues the study, failed and pruned trials, pruning through
  ``report``, an in-memory study;
- the src/conf/hparams_search configs compose;
- end to end with gamut (slow): tiny StyleGAN2 trials return PPL, are MLflow runs tagged with the
  study and the trial, and a pruner stops them.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

import hydra_plugins.gamut_optuna_sweeper.optuna_sweeper as sweeper_module
from hydra_plugins.gamut_optuna_sweeper.optuna_sweeper import (
    consecutive_runs,
    job_outcome,
    parse_search_space,
)
from src.sweeps.optuna import report, study_name
from tests.browser import chromium, free_port, needs_chromium, serving
from tests.conftest import CONF, TINY, compose_cfg

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------
# The search space


@pytest.mark.parametrize(
    "value,expected",
    [
        ("interval(0.1, 2)", FloatDistribution(0.1, 2.0)),
        ("tag(log, interval(1e-4, 1e-2))", FloatDistribution(1e-4, 1e-2, log=True)),
        ("int(interval(2, 8))", IntDistribution(2, 8)),
        ("tag(int, interval(2, 8))", IntDistribution(2, 8)),
        ("tag(int, log, interval(1, 64))", IntDistribution(1, 64, log=True)),
        ("range(5, 25, 5)", IntDistribution(5, 20, step=5)),  # 5, 10, 15, 20: the stop is excluded
        ("range(4)", IntDistribution(0, 3)),
        ("range(0.1, 0.5, 0.1)", FloatDistribution(0.1, 0.4, step=0.1)),
        ("choice(none, ada, diffaugment)", CategoricalDistribution(["none", "ada", "diffaugment"])),
        ("1,2,4", CategoricalDistribution([1, 2, 4])),
        ("shuffle(choice(a, b))", CategoricalDistribution(["a", "b"])),  # the order stays as written
    ],
)
def test_each_syntax_maps_to_its_distribution(value, expected):
    space = parse_search_space({"model.loss.r1_gamma": value})
    assert space.distributions == {"model.loss.r1_gamma": expected}
    assert space.fixed == []


def test_fixed_values_nested_keys_and_values_written_back():
    params = OmegaConf.create(
        {
            "model": {"optim": {"g_lr": "tag(log, interval(1e-4, 1e-2))", "betas": [0.0, 0.99]}},
            "model.loss.pl_weight": 0,
            "model.augment.mode": "choice(none, 'a b', [1,2])",
        }
    )
    space = parse_search_space(params)
    assert set(space.params) == {"model.optim.g_lr", "model.augment.mode"}
    assert space.fixed == ["model.optim.betas=[0.0,0.99]", "model.loss.pl_weight=0"]
    assert space.params["model.augment.mode"].distribution.choices == ("none", "a b", "[1,2]")
    # a drawn value goes back as an override that Hydra parses to that value
    overrides = space.overrides({"model.optim.g_lr": 1.2345e-05, "model.augment.mode": "a b"})
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)}
    assert parsed["model.optim.g_lr"] == 1.2345e-05 and parsed["model.augment.mode"] == "a b"
    list_choice = space.overrides({"model.optim.g_lr": 0.001, "model.augment.mode": "[1,2]"})[-1]
    assert OverridesParser.create().parse_overrides([list_choice])[0].value() == [1, 2]
    assert space.example() == {"model.optim.g_lr": 1e-4, "model.augment.mode": "none"}


def test_the_command_line_adds_sweeps_and_wins():
    params = {"model.optim.g_lr": "interval(0.001, 0.01)", "model.optim.d_lr": "interval(0.001, 0.01)"}
    args = [
        "experiment=quickstart",
        "model.optim.g_lr=0.002",
        "model.loss.r1_gamma=1,2",
        "+extra=tag(log,interval(1,9))",
    ]
    space = parse_search_space(params, args)
    assert space.fixed == ["experiment=quickstart", "model.optim.g_lr=0.002"]  # a plain value fixes the key
    assert space.distributions == {
        "model.optim.d_lr": FloatDistribution(0.001, 0.01),
        "model.loss.r1_gamma": CategoricalDistribution([1, 2]),
        "extra": FloatDistribution(1.0, 9.0, log=True),
    }
    assert space.overrides({"model.optim.d_lr": 0.005, "model.loss.r1_gamma": 2, "extra": 3.0})[2:] == [
        "model.optim.d_lr=0.005",
        "model.loss.r1_gamma=2",
        "+extra=3.0",
    ]


@pytest.mark.parametrize(
    "value,problem",
    [
        ("interval(0.01, 0.001)", "low must be below high"),  # the whole message: gamut: invalid config: <this>
        ("interval(1, 1)", "low must be below high"),
        ("tag(log, interval(0, 1))", "a log interval needs low > 0"),
        ("range(1, 5, 0)", "step must be positive"),
        ("range(5, 1, -1)", "step must be positive"),
        ("range(5, 1)", "empty range"),
        ("tag(log, range(1, 10))", "a range has a step and cannot be log"),
        ("choice(a, a)", "a choice is listed twice"),
        ("choice()", "cannot be parsed (ValueError while evaluating 'choice()': empty choice is not legal)"),
        ("interval(1, 2", "cannot be parsed"),
    ],
)
def test_an_invalid_range_names_the_parameter(value, problem):
    # Hydra's plugin scan re-executes plugin modules in place, so the class is looked up when the test runs
    with pytest.raises(sweeper_module.SweepConfigError) as e:
        parse_search_space({"model.optim.g_lr": value})
    assert str(e.value).startswith(f"gamut: invalid config: hydra.sweeper.params.model.optim.g_lr: {value}: {problem}")


def test_an_invalid_command_line_sweep_names_the_argument():
    message = r"model\.optim\.g_lr=interval\(0\.01,0\.001\): low must be below high"
    with pytest.raises(sweeper_module.SweepConfigError, match=message):
        parse_search_space({}, ["model.optim.g_lr=interval(0.01,0.001)"])


# --------------------------------------------------------------------------------------------------
# A job's outcome


def _job(folder: Path, status: JobStatus, value) -> JobReturn:
    ret = JobReturn(hydra_cfg=OmegaConf.create({"hydra": {"runtime": {"output_dir": str(folder)}}}), status=status)
    ret.return_value = value
    return ret


def test_a_job_outcome_becomes_a_trial_state(tmp_path):
    ok = JobStatus.COMPLETED
    assert job_outcome(_job(tmp_path, ok, 1.5)) == ("COMPLETE", 1.5, "")
    assert job_outcome(_job(tmp_path, ok, 3))[:2] == ("COMPLETE", 3.0)
    assert job_outcome(_job(tmp_path, ok, None))[0] == "FAIL"
    assert job_outcome(_job(tmp_path, ok, float("nan")))[:2] == ("FAIL", None)
    assert job_outcome(_job(tmp_path, ok, "abc"))[0] == "FAIL"
    state, _, note = job_outcome(_job(tmp_path, JobStatus.FAILED, RuntimeError("boom")))
    assert state == "FAIL" and "RuntimeError: boom" in note
    assert job_outcome(_job(tmp_path, JobStatus.FAILED, optuna.TrialPruned("at step 3")))[0] == "PRUNED"
    (tmp_path / "failed").write_text("ConfigError: data.resolution=48: ...\n")
    assert "ConfigError: data.resolution=48" in job_outcome(_job(tmp_path, ok, None))[2]
    note = "trial 2 pruned by MedianPruner at step 8 (value 3)"
    (tmp_path / "pruned").write_text(f"{note}\n")
    assert job_outcome(_job(tmp_path, ok, None)) == ("PRUNED", None, note)


def test_consecutive_trial_numbers_are_launched_together():
    assert consecutive_runs([4, 5, 6]) == [(0, 3)]
    assert consecutive_runs([4, 5, 9, 10, 12]) == [(0, 2), (2, 4), (4, 5)]
    assert consecutive_runs([]) == []


def test_report_is_a_no_op_outside_an_optuna_sweep():
    assert report(None, 1.0, 0) is None
    assert report(3, 1.0, 0) is None  # no Hydra here: nothing to report to, nothing raised
    assert study_name() is None


def test_importing_train_does_not_import_optuna():
    code = "import sys, src.train; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_sweep_report_counts_only_this_launchs_trials(tmp_path, capsys):
    from src.sweeps.optuna import SWEEPER_TARGET
    from src.sweeps.report import SweepReport

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "sweeper": {"_target_": SWEEPER_TARGET}}})
    for n in range(4):
        (tmp_path / str(n)).mkdir()
    (tmp_path / "0" / "failed").write_text("RuntimeError: an earlier launch's trial\n")
    (tmp_path / "2" / "pruned").write_text("trial 2 pruned by MedianPruner at step 8 (value 3)\n")
    (tmp_path / "optimization_results.yaml").write_text("this_launch: [2, 3]\n")
    SweepReport().on_multirun_end(config)  # trial 0 failed in another launch, trial 2 was pruned: all is well
    (tmp_path / "3" / "failed").write_text("RuntimeError: boom\n")
    with pytest.raises(SystemExit) as e:
        SweepReport().on_multirun_end(config)
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "1 of 2 job(s) failed" in err and "job 3: RuntimeError: boom" in err and "job 0" not in err
    assert "runs new trials" in err


# --------------------------------------------------------------------------------------------------
# The sweep, driven through tests/optuna_task.py


def _task(log_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tests.optuna_task", f"hydra.searchpath=[file://{CONF}]", *args]
    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _study(log_dir: Path, name: str = "task_search") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{log_dir}/optuna.db")


def _jobs(sweep: Path) -> dict[int, dict]:
    return {int(p.name): json.loads((p / "job.json").read_text()) for p in sweep.iterdir() if p.name.isdigit()}


def test_the_study_keeps_the_best_trial_and_a_relaunch_continues_it(tmp_path):
    proc = _task(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "task" / "search"
    jobs = _jobs(sweep)
    assert sorted(jobs) == [0, 1, 2, 3] and all(j["trial"] == n for n, j in jobs.items())  # folder = trial
    values = {n: (j["x"] - 0.3) ** 2 + j["n"] for n, j in jobs.items()}
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = min(values, key=values.get)
    assert results["study_name"] == "task_search" and results["direction"] == "minimize"
    assert results["trials"] == {"total": 4, "complete": 4, "pruned": 0, "failed": 0, "running": 0}
    assert results["best_trial"] == best and results["best_value"] == pytest.approx(values[best])
    assert results["best_params"] == {"x": jobs[best]["x"], "n": jobs[best]["n"]}
    assert results["best_job_dir"] == str(sweep / str(best))

    proc = _task(tmp_path)  # the same command again: 4 more trials of the same study
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _jobs(sweep)
    assert sorted(jobs) == list(range(8)) and all(j["trial"] == n for n, j in jobs.items())
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["this_launch"] == [4, 5, 6, 7] and results["trials"]["total"] == 8
    study = _study(tmp_path)
    assert [t.number for t in study.trials] == list(range(8))
    assert study.best_value == pytest.approx(min((j["x"] - 0.3) ** 2 + j["n"] for j in jobs.values()))
    # the relaunch's sampler is seeded on from the first launch's: no trial repeats an earlier one
    assert not {jobs[n]["x"] for n in range(4)} & {jobs[n]["x"] for n in range(4, 8)}


def test_failed_and_pruned_trials_do_not_stop_the_search(tmp_path):
    script = "script=[ok,none,marker,raise,nonfinite,ok]"
    proc = _task(tmp_path, script, "hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    states = [t.state.name for t in _study(tmp_path).trials]
    assert states == ["COMPLETE", "FAIL", "PRUNED", "FAIL", "FAIL", "COMPLETE"]
    assert "trial 3 failed: raised RuntimeError: trial 3 broke" in proc.stderr + proc.stdout
    results = yaml.safe_load((tmp_path / "task" / "search" / "optimization_results.yaml").read_text())
    assert results["trials"] == {"total": 6, "complete": 2, "pruned": 1, "failed": 3, "running": 0}
    assert results["best_trial"] in (0, 5)


def test_report_prunes_a_trial_through_the_study_storage(tmp_path):
    # each trial reports its own number at steps 0, 1, 2; the pruner stops those above 1.5
    pruner = "+hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, upper: 1.5}"
    proc = _task(tmp_path, "script=[report]", "~hydra.sweeper.pruner", pruner)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = _study(tmp_path).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]
    assert trials[1].intermediate_values == {0: 1.0, 1: 1.0, 2: 1.0}
    assert trials[3].intermediate_values == {0: 3.0}  # stopped at its first report


def test_an_in_memory_study_and_a_new_study_over_old_folders(tmp_path):
    proc = _task(tmp_path, "hydra.sweeper.storage=null", "hydra.sweeper.n_trials=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = yaml.safe_load((tmp_path / "task" / "search" / "optimization_results.yaml").read_text())
    assert results["storage"] == "in memory" and results["trials"]["complete"] == 2
    assert not (tmp_path / "optuna.db").exists()
    # a new (empty) study would number its trials into the folders left there: refused
    proc = _task(tmp_path, "hydra.sweeper.storage=null")
    assert proc.returncode == 1
    assert "already holds job folders (0, 1)" in proc.stderr and "choose another run_name" in proc.stderr


def test_bad_settings_stop_the_launch_with_one_line(tmp_path):
    proc = _task(tmp_path, "hydra.sweeper.direction=up")
    assert proc.returncode == 1
    assert "gamut: invalid config: hydra.sweeper.direction='up': must be auto, minimize or maximize" in proc.stderr
    proc = _task(tmp_path, "hydra.sweeper.params.x='interval(2, 1)'", "y=1,2")
    assert "gamut: invalid config: hydra.sweeper.params.x: interval(2, 1): low must be below high" in proc.stderr
    proc = _task(tmp_path, "y=1,2")  # composes only with +y: refused before the study gets a trial
    assert proc.returncode == 1 and "Could not override 'y'" in proc.stderr
    assert not list(tmp_path.glob("*/search/[0-9]*"))
    assert not (tmp_path / "optuna.db").exists()


# --------------------------------------------------------------------------------------------------
# src/conf/hparams_search


@pytest.mark.parametrize(
    "search,metric,direction",
    [
        ("stylegan2_optuna", "fid10k_full", "minimize"),
        ("segan_optuna", "fid10k_full", "minimize"),
        ("chromagan_optuna", "val/psnr", "maximize"),
    ],
)
def test_search_configs_compose(search, metric, direction, log_dir):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train.yaml", overrides=[f"hparams_search={search}"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.gamut_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.run_name == search
    assert cfg.optimized_metric == metric and sweeper.direction == direction
    assert sweeper.study_name == f"{cfg.task_name}_{search}"
    assert sweeper.storage == f"sqlite:///{log_dir}/optuna.db"
    space = parse_search_space(sweeper.params)
    assert len(space.params) >= 4 and not space.fixed
    for key, p in space.params.items():
        assert OmegaConf.select(cfg, key) is not None, key  # every searched key exists
        assert isinstance(p.distribution, FloatDistribution) and p.distribution.log
    if search == "chromagan_optuna":
        assert cfg.model._target_.endswith("ChromaGAN") and cfg.trainer.limit_val_batches > 0
        assert sweeper.pruner is None
    else:
        assert metric in cfg.callbacks.metrics.metrics and cfg.callbacks.metrics.every_kimg > 0
        assert "checkpoint" in cfg.callbacks and cfg.trainer.max_kimg > 0
        assert cfg.model._target_.endswith("SEGAN" if search == "segan_optuna" else "StyleGAN2")


def test_an_experiment_named_on_the_command_line_wins_over_the_search_default(log_dir):
    cfg = compose_cfg(["hparams_search=chromagan_optuna", "experiment=chromagan_imagenet"])
    assert cfg.task_name == "chromagan_imagenet" and cfg.optimized_metric == "val/psnr"
    cfg = compose_cfg(["hparams_search=stylegan2_optuna", "experiment=quickstart"])
    assert cfg.task_name == "quickstart" and cfg.run_name == "stylegan2_optuna"


# --------------------------------------------------------------------------------------------------
# End to end with gamut


def _gamut_search(log_dir: Path, weights_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "src.train",
        "hparams_search=stylegan2_optuna",  # hydra.mode: MULTIRUN, so no -m
        *TINY,
        "logger=mlflow",
        "trainer.max_steps=2",
        "callbacks.checkpoint.every_kimg=1",
        "callbacks.sample_grid.every_kimg=1",
        "optimized_metric=ppl_wend",  # PPL through the VGG-16 trunk: no Inception pass
        "callbacks.metrics.metrics=[ppl_wend]",
        "callbacks.metrics.every_kimg=0.004",  # after each iteration (4 images)
        "callbacks.metrics.ppl.num_samples=2",
        "callbacks.metrics.ppl.batch_size=2",
        f"paths.weights_dir={weights_dir}",
        "hydra.sweeper.n_jobs=1",
        *extra,
    ]
    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def gamut_search(tmp_path_factory, weights_dir):
    log_dir = tmp_path_factory.mktemp("optuna_e2e")
    return log_dir, _gamut_search(log_dir, weights_dir, "hydra.sweeper.n_trials=4")


@pytest.mark.slow
def test_gamut_trials_return_the_metric_and_the_study_keeps_the_best(gamut_search):
    log_dir, proc = gamut_search
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    sweep = log_dir / "quickstart" / "stylegan2_optuna"
    study = _study(log_dir, "quickstart_stylegan2_optuna")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    for t in study.trials:
        folder = sweep / str(t.number)
        done = json.loads((folder / "done").read_text())
        assert t.value == pytest.approx(done["metrics"]["ppl_wend"]) and math.isfinite(t.value)
        assert sorted(t.intermediate_values) == [4, 8]  # reported after each evaluation, at images seen
        run_cfg = OmegaConf.load(folder / ".hydra" / "config.yaml")
        assert run_cfg.optuna_trial == t.number
        assert run_cfg.model.optim.g_lr == pytest.approx(t.params["model.optim.g_lr"])
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_trial"] == study.best_trial.number and results["optimized_metric"] == "ppl_wend"


@pytest.mark.slow
def test_every_gamut_trial_is_an_mlflow_run_tagged_with_study_and_trial(gamut_search):
    from mlflow.tracking import MlflowClient

    log_dir, proc = gamut_search
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    client = MlflowClient(f"sqlite:///{log_dir}/mlflow.db")
    exp = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.optuna_study = 'quickstart_stylegan2_optuna'")
    assert sorted(int(r.data.tags["optuna_trial"]) for r in runs) == [0, 1, 2, 3]
    for r in runs:
        n = r.data.tags["optuna_trial"]
        assert r.info.run_name == f"stylegan2_optuna/{n}" and r.data.tags["sweep_job"] == n
        assert r.info.status == "FINISHED" and "metrics/ppl_wend" in r.data.metrics


@pytest.mark.slow
def test_a_pruned_gamut_trial_writes_its_marker_and_is_not_a_failure(tmp_path, weights_dir):
    # every PPL is above -1: each trial is pruned at its first evaluation
    pruner = "+hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, upper: -1}"
    proc = _gamut_search(tmp_path, weights_dir, "hydra.sweeper.n_trials=2", "~hydra.sweeper.pruner", pruner)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]  # SweepReport: a pruned job is no failure
    study = _study(tmp_path, "quickstart_stylegan2_optuna")
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    for t in study.trials:
        folder = tmp_path / "quickstart" / "stylegan2_optuna" / str(t.number)
        assert "pruned by ThresholdPruner at step 4" in (folder / "pruned").read_text()
        assert not (folder / "failed").exists() and not (folder / "done").exists()
        assert sorted(t.intermediate_values) == [4]
    results = yaml.safe_load((tmp_path / "quickstart" / "stylegan2_optuna" / "optimization_results.yaml").read_text())
    assert results["best_trial"] is None and "no trial has completed" in results["note"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.sweep_job != ''")  # not the parent
    assert len(runs) == 2 and all(r.data.tags.get("optuna_pruned") == "true" for r in runs)


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("fid50k_full", "minimize"),
        ("ppl2_wend", "minimize"),
        ("kid10k", "minimize"),
        ("is50k_mean", "maximize"),
        ("pr50k3_full_recall", "maximize"),
        ("val/psnr", "maximize"),
        ("val/ssim", "maximize"),
    ],
)
def test_direction_auto_follows_the_metric(metric, direction):
    from omegaconf import OmegaConf

    from hydra_plugins.gamut_optuna_sweeper.optuna_sweeper import OptunaSweeper

    sweeper = OptunaSweeper(direction="auto")
    sweeper.config = OmegaConf.create({"optimized_metric": metric})
    assert sweeper._checked_direction() == direction


@pytest.mark.slow
@needs_chromium
def test_make_study_opens_the_search_in_optuna_dashboard(gamut_search):
    """``make study`` over the search's storage prints the study's page; in headless Chromium its trial
    list shows the four trials, each complete with the value the study holds."""
    playwright = pytest.importorskip("playwright.sync_api")
    log_dir, proc = gamut_search
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    study = _study(log_dir, "quickstart_stylegan2_optuna")
    port = free_port()
    cmd = ["make", "-s", "study", f"LOG_DIR={log_dir}", "STUDY=quickstart_stylegan2_optuna", f"STUDY_PORT={port}"]
    with serving(cmd, f"http://127.0.0.1:{port}/api/studies", ROOT, env=dict(os.environ)) as first_line:
        address = first_line.split()[1]
        study_id = optuna.storages.get_storage(f"sqlite:///{log_dir}/optuna.db").get_study_id_from_name(
            study.study_name
        )
        assert address == f"http://127.0.0.1:{port}/dashboard/studies/{study_id}"
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(address)
                page.get_by_text("quickstart_stylegan2_optuna").first.wait_for(timeout=60_000)
                page.goto(f"{address}/trials")
                page.get_by_text("4 Trials").wait_for(timeout=60_000)
                text = page.inner_text("body")
            finally:
                browser.close()
    for t in study.trials:
        assert f"Trial {t.number}" in text
    assert text.count("Complete") >= 4
    assert repr(study.trials[0].value) in text  # the first trial's details are open: its value
