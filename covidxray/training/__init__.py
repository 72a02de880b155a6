"""Training: loop, checkpoints, distributed runs."""
