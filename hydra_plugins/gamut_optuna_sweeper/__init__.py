"""gamut's Optuna sweeper for Hydra (config: src/conf/hydra/sweeper/optuna.yaml).

- :mod:`.optuna_sweeper`: the sweeper (``OptunaSweeper``, the ``_target_`` of the config), and the
  plugin's public names;
- ``_search_space.py``: ``hydra.sweeper.params`` and the command line's sweeps as Optuna distributions;
- ``_outcomes.py``: how a finished job ended, as a trial state (COMPLETE, PRUNED, FAIL).

This package sits in the ``hydra_plugins`` namespace package (which has no ``__init__.py`` of its
own, so it merges with the installed launchers' portions): Hydra only instantiates sweepers found
there. Its scan imports (and re-runs) every module here whose name does not start with ``_``, hence
the private helper modules: only the sweeper's module is scanned. It does not import Optuna until a
sweep starts, because Hydra imports every plugin module at the start of every run.
"""
