"""The subjects the benchmark's command line offers, by name, in the order its help lists them.

A new subject is one module under :mod:`src.benchmark.subjects` ending with its
:class:`~src.benchmark.options.Subject`, plus one entry here.
"""

from __future__ import annotations

from typing import Any

from src.benchmark.options import Subject
from src.benchmark.subjects import chromagan, colorspace, explore, inference, loader, segan, stylegan2, stylegan3

__all__ = ["ALL_KEYS", "SUBJECTS"]

SUBJECTS: dict[str, Subject] = {
    s.name: s
    for s in (
        stylegan2.SUBJECT,
        stylegan3.SUBJECT,
        segan.SUBJECT,
        inference.SUBJECT,
        chromagan.SUBJECT,
        explore.SUBJECT,
        loader.SUBJECT,
        colorspace.SUBJECT,
    )
}
# Every key of every subject with its default (a later subject's default wins where two differ): the
# parsed arguments carry them all, so a subject's code reads any key without probing.
ALL_KEYS: dict[str, Any] = {k: v for s in SUBJECTS.values() for k, v in s.keys.items()}
