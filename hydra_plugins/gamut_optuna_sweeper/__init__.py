"""gamut's Optuna sweeper for Hydra (:mod:`.optuna_sweeper`; config: conf/hydra/sweeper/optuna.yaml).

This package sits in the ``hydra_plugins`` namespace package (which has no ``__init__.py`` of its
own, so it merges with the installed launchers' portions): Hydra only instantiates sweepers found
there. It does not import Optuna until a sweep starts, because Hydra imports every plugin module
at the start of every run.
"""
