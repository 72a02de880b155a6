"""Networks created by name from a registry."""
