"""Open an Optuna search's study in optuna-dashboard: its trials, their values and parameters, the
optimisation history and the parameter importances, served on this machine over the study's own storage.

    python scripts/study.py [study=NAME] [storage=URL] [host=127.0.0.1] [port=8080]
    make study [STUDY=NAME] [STUDY_PORT=8080] [LOG_DIR=logs]

Keys: ``storage`` (the Optuna storage URL the search wrote to; default the sweeper's,
``sqlite:///<log dir>/optuna.db``, with ``<log dir>`` as training has it: ``GAMUT_LOG_DIR`` or the
repository's ``logs``), ``study`` (a study name, e.g. ``quickstart_stylegan2_optuna``: the address of its
page is printed; empty: the list of studies), ``host`` (127.0.0.1: only this machine), ``port``. A gamut
search names its study ``<task_name>_<run_name>`` (src/conf/hydra/sweeper/optuna.yaml). Needs the ``study``
extra (``pip install "gamut[study]"``; make installs it). Stop with Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hydra_plugins.gamut_optuna_sweeper.optuna_sweeper import storage_display
from src.utils.cli import console_entry, parse_key_values
from src.utils.optional import MissingExtra, require
from src.utils.resolvers import ROOT

PROG = "study.py"
DEFAULTS = dict(storage=None, study="", host="127.0.0.1", port=8080)


def default_storage() -> str:
    """The storage src/conf/hydra/sweeper/optuna.yaml gives a search: ``optuna.db`` in the log folder."""
    log_dir = Path(os.environ.get("GAMUT_LOG_DIR") or ROOT / "logs")  # src/conf/paths/default.yaml's log_dir
    return f"sqlite:///{log_dir.resolve()}/optuna.db"


def study_address(storage: str, study: str, host: str, port: int) -> str:
    """The dashboard's address for ``study`` (its page), or for the study list when ``study`` is empty;
    ``ValueError`` naming the storage's studies when it holds no study of that name."""
    import optuna

    base = f"http://{host}:{port}/dashboard"
    if not study:
        return base
    opened = optuna.storages.get_storage(storage)
    names = [s.study_name for s in opened.get_all_studies()]
    if study not in names:
        where = storage_display(storage)
        raise ValueError(f"study={study!r} is not in {where}; it holds: {', '.join(names) or 'no study'}")
    return f"{base}/studies/{opened.get_study_id_from_name(study)}"


def check_storage(storage: str) -> None:
    """A SQLite storage must be an existing file (Optuna would create an empty one)."""
    prefix = "sqlite:///"
    if storage.startswith(prefix) and not Path(storage[len(prefix) :]).is_file():
        raise ValueError(
            f"storage={storage_display(storage)}: no such file; a search writes it when it starts "
            "(python -m src.train hparams_search=...), or name another with storage=URL"
        )


def main(argv: list[str] | None = None) -> None:
    cfg = parse_key_values(sys.argv[1:] if argv is None else argv, DEFAULTS, PROG, doc=__doc__)
    port = cfg.port
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SystemExit(f"{PROG}: port={port!r}: expected an integer in 1..65535")
    try:
        dashboard = require("study")
    except MissingExtra as e:
        raise SystemExit(f"{PROG}: {e}") from None
    storage = str(cfg.storage or default_storage())
    try:
        check_storage(storage)
        address = study_address(storage, str(cfg.study or ""), str(cfg.host), port)
    except ValueError as e:
        raise SystemExit(f"{PROG}: {e}") from None
    except Exception as e:  # a bad URL, a database driver that is not installed, no server
        raise SystemExit(f"{PROG}: storage={storage_display(storage)}: {type(e).__name__}: {e}") from None
    print(f"study: {address} (storage {storage_display(storage)}); Ctrl-C stops", flush=True)
    dashboard.run_server(storage, host=str(cfg.host), port=port)


cli = console_entry(main)

if __name__ == "__main__":
    main()
