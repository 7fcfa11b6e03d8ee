"""User errors: the one base class that ``run.py`` prints as a single line (exit 1) instead of a traceback.

Anything that is not a :class:`UserError` is a bug and keeps its full traceback. Subclasses name where the mistake
is: a config key, an input file (with its line), a benchmark folder, a checkpoint. ``UserError`` derives from
``ValueError`` so that callers catching ``ValueError`` keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in the user's command line, config or input files; the message says what to fix."""


class ConfigError(UserError):
    """A config value out of range, of the wrong type, or an unknown choice (the message names the key)."""


class CheckpointError(UserError):
    """A checkpoint file that is missing, unreadable or was not written by infembed."""


def check_choice(value, valid, key: str) -> None:
    """``value`` must be one of ``valid``; the error names the config ``key`` and lists the valid choices."""
    if value not in valid:
        raise ConfigError(f"{key}={value!r}: expected one of {', '.join(map(str, valid))}")
