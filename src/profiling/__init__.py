"""Measuring gamut: per-phase timing and FLOP counts (:mod:`~src.profiling.measure`) and NVIDIA's
StyleGAN2 timed the same way from a user's checkout (:mod:`~src.profiling.nvidia_reference`, with the
mirror of their training loop), and their StyleGAN3 (:mod:`~src.profiling.nvidia_stylegan3`). The
benchmark that uses them is :mod:`src.benchmark` (command line: :mod:`src.tools.benchmark`,
``scripts/benchmark.py``); results are in docs/benchmarks.md.
"""
