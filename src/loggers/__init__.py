"""Experiment loggers: the one interface gamut adds to Lightning's loggers (``extras``: ``RunLogger``),
MLflow, W&B, Neptune, Lightning's CSV and TensorBoard with those extras (``lightning``), and the image helper
every callback uses (``images``)."""
