"""Reading radiographs from files into checked arrays, and preparing them for models."""
