"""Measuring gamut: per-phase timing and FLOP counts (:mod:`~src.profiling.measure`), the benchmark's
in-memory data and iteration timer (:mod:`~src.profiling.harness`), and NVIDIA's StyleGAN2 timed the
same way from a user's checkout (:mod:`~src.profiling.nvidia_reference`). The command line is
:mod:`src.tools.benchmark` (``scripts/benchmark.py``); results are in docs/benchmarks.md.
"""
