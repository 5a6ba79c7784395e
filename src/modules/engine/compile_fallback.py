"""``torch.compile`` for ``model.perf.compile``, falling back to eager with one warning when compiling
fails (no C++ compiler, an unsupported op), so the speed option never stops a run."""

from __future__ import annotations

import warnings
from typing import Any

import torch

__all__ = ["CompiledOrEager", "COMPILE_ERRORS", "compile_errors"]


def compile_errors() -> tuple[type[BaseException], ...]:
    """The exception types a failed compilation raises (dynamo's and inductor's; RuntimeError if neither exists)."""
    errors: list[type[BaseException]] = []
    try:
        from torch._dynamo.exc import TorchDynamoException

        errors.append(TorchDynamoException)
    except ImportError:  # pragma: no cover - very old torch
        pass
    try:
        from torch._inductor.exc import InductorError

        errors.append(InductorError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors) or (RuntimeError,)


#: what :class:`CompiledOrEager` catches
COMPILE_ERRORS = compile_errors()


class CompiledOrEager:
    """Calls ``torch.compile(module)``; if compiling fails, warns once and runs ``module`` eagerly."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.compiled = torch.compile(module)
        self.failed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except COMPILE_ERRORS as err:
                self.failed = True
                warnings.warn(
                    f"model.perf.compile: torch.compile failed for {type(self.module).__name__} "
                    f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                    "running it eagerly instead",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self.module(*args, **kwargs)
