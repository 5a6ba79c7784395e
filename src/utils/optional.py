"""Optional features and the pip extra each needs (pyproject.toml ``[project.optional-dependencies]``).

The core install (``pip install gamut``) trains, evaluates, generates and logs to MLflow, CSV and
TensorBoard. The latent explorer, W&B, Neptune and the Optuna study dashboard live in extras; asking
for one whose extra is missing stops with one line naming the extra and the command that installs it
(``make`` and CI install every extra through ``.[test]``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtra", "require"]

# extra name -> (the module it provides, what it is for)
EXTRAS: dict[str, tuple[str, str]] = {
    "explorer": ("gradio", "the latent explorer (make explore, gamut-explore)"),
    "wandb": ("wandb", "logger=wandb"),
    "neptune": ("neptune", "logger=neptune"),
    "study": ("optuna_dashboard", "the Optuna study dashboard (make study)"),
}


class MissingExtra(ImportError):
    """A feature was asked for whose optional dependencies are not installed; the message says which."""


def require(extra: str, feature: str | None = None) -> ModuleType:
    """Import the module of ``extra`` or raise :class:`MissingExtra` naming the extra, e.g.
    ``logger=wandb needs the 'wandb' extra, which is not installed: pip install "gamut[wandb]"``."""
    module, what = EXTRAS[extra]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name is not None and e.name != module and not module.startswith(f"{e.name}."):
            raise  # the package is there but something it imports is broken: show that
        raise MissingExtra(
            f'{feature or what} needs the {extra!r} extra, which is not installed: pip install "gamut[{extra}]" '
            f'(in a clone: pip install -e ".[{extra}]")'
        ) from None
