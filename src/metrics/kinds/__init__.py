"""The registered metric kinds, one module each: its compute function and its one
:func:`~src.metrics.registry.register_metric` call. Every module here is imported the first time a
metric name is looked up (:func:`src.metrics.registry.load_kinds`), so a new module is all a new
metric needs (docs/evaluation.md, "Adding a metric")."""
