"""Paths people see and paths commands write: shown (portable in reports), outputs (the write guard),
weights (WEIGHTS_DIR, the folder of the bundled models)."""
