"""Paths people see and paths commands write: shown (portable in reports), outputs (the write guard)."""
