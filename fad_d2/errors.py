"""The one base class of fad_d2's user errors.

Every error that a wrong input causes (a config value, a genotype file, a checkpoint, a dataset,
a command line) is a :class:`FADError`, and its message names the input and what is allowed.
``fad_d2.engine.setup.one_line_errors`` turns exactly these (and a missing file) into one
``error: ...`` line; any other exception is a bug and keeps its traceback.
"""


class FADError(ValueError):
    """A user error: the message names the input and what is wrong with it.  A ``ValueError``,
    so that callers catching ``ValueError`` keep working."""


class ConfigError(FADError):
    """A config file, a command-line override or a config value that cannot be used; the message
    names it."""


class DatasetError(FADError):
    """A dataset that is not registered, or whose annotation file cannot be used."""
