"""The benchmark behind ``scripts/benchmark.py`` (the command line: :mod:`src.tools.benchmark`).

One module per subject under :mod:`~src.benchmark.subjects` (what is timed and how), the subject
contract with the shared key groups and their checks (:mod:`~src.benchmark.options`), the registry of
subjects by name (:mod:`~src.benchmark.registry`), and what the subjects share: in-memory data, a timed
real ``Trainer.fit``, the device and resolution from the arguments (:mod:`~src.benchmark.harness`) and
the report of a timed training iteration (:mod:`~src.benchmark.report`). Timing and FLOP counting
themselves, and NVIDIA's StyleGAN2 and StyleGAN3 timed from a user's checkout, are :mod:`src.profiling`'s. The
subjects build the model families, so this package sits above them (docs/architecture.md, Layers).
"""
