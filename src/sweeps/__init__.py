"""The job side of hyperparameter searches: what a training run tells the sweeper that launched it."""
