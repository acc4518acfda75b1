"""Exception types shared by the whole package.

The CLI turns any :class:`StyleGANError` into one line on stderr and a non-zero exit code;
anything else is a bug and keeps its traceback.
"""


class StyleGANError(Exception):
    """Base class of every error a user can cause (bad file, bad argument, bad data)."""


class CheckpointError(StyleGANError):
    """A model file could not be read or written: corrupt, unsupported, or unsafe."""


class DatasetError(StyleGANError):
    """A dataset (folder, zip or image) could not be read or is unusable for training."""


class UserInputError(StyleGANError):
    """An argument is malformed or out of range (seeds, psi, layer ranges, classes, paths)."""
