"""Measuring gamut: per-phase timing and FLOP counts (:mod:`~src.profiling.measure`) and NVIDIA's
StyleGAN2 timed the same way from a user's checkout (:mod:`~src.profiling.nvidia_reference`). The
benchmark that uses them is :mod:`src.benchmark` (command line: :mod:`src.tools.benchmark`,
``scripts/benchmark.py``); results are in docs/benchmarks.md.
"""
