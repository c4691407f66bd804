"""The project's error type: bad input of any kind raises `NesfError` with a message naming the source."""


class NesfError(ValueError):
    """Bad input (a file, a structure, a checkpoint, a setting) that the library refuses, with the reason."""
