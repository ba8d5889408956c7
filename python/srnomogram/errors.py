"""Exception hierarchy: every error the package raises on purpose derives from SrnomogramError.

Messages are one line: what is wrong, where (file, row, column, parameter) and what to do,
worded as scikit-learn's validation does, e.g.
"The 'bin_width' parameter of extract must be a float > 0. Got -1 instead."
"""


class SrnomogramError(Exception):
    """Root of all srnomogram errors."""


class InputError(SrnomogramError, ValueError):
    """Bad user input: a parameter, an image, a mask or a table value."""


class ManifestError(InputError):
    """A cohort manifest is malformed (missing column, bad label, unsafe path, ...)."""


class ConfigError(InputError):
    """A study YAML or CLI override is invalid (unknown key, wrong type, ...)."""


class CheckpointError(SrnomogramError):
    """A model checkpoint is missing, corrupted or belongs to another model."""


class ClusterError(SrnomogramError, RuntimeError):
    """A Dask cluster cannot be used: scheduler unreachable, no worker, or workers with other versions."""


class RBridgeError(SrnomogramError, RuntimeError):
    """An R function called through rpy2 failed; the message carries R's own message."""


def param_error(param, func, allowed, got):
    """Build the scikit-learn style message for an invalid parameter value.

    >>> str(param_error("bin_width", "extract", "a float > 0", -1))
    "The 'bin_width' parameter of extract must be a float > 0. Got -1 instead."
    """
    return InputError(f"The {param!r} parameter of {func} must be {allowed}. Got {got!r} instead.")


class OutputInUseError(SrnomogramError, RuntimeError):
    """Another srnomogram process is writing the same output folder (it holds its lock file)."""


class OutputOwnerError(InputError):
    """The output folder belongs to another study or command (its owner marker, ``.srnomogram.json``), or holds
    files srnomogram did not write: writing there would overwrite them."""
