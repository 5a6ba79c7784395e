"""Experiment loggers beyond Lightning's own (MLflow, Neptune) and the one image-logging helper every callback uses."""
