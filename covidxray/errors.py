"""Errors meant for people: each names the file or value at fault and what is wrong with it.

The CLI prints them as one line and exits non-zero, never with a traceback.
"""


class CovidxrayError(Exception):
    """Base of every error that the CLI reports as a plain message."""


class ImageReadError(CovidxrayError):
    """An image file could not be read: missing, empty, truncated, not an image, too large."""


class DatasetError(CovidxrayError):
    """A dataset folder or table does not have the layout or columns that its reader needs."""
