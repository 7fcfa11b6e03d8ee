"""User errors: the one base class that ``run.py`` prints as a single line (exit 1) instead of a traceback.

Anything that is not a :class:`UserError` is a bug and keeps its full traceback. Subclasses name where the mistake
is: a config key, an input file (with its line), a benchmark folder, a checkpoint. ``UserError`` derives from
``ValueError`` so that callers catching ``ValueError`` keep working.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(ValueError):
    """A mistake in the user's command line, config or input files; the message says what to fix."""


class ConfigError(UserError):
    """A config value out of range, of the wrong type, or an unknown choice (the message names the key)."""


class CheckpointError(UserError):
    """A checkpoint file that is missing, unreadable or was not written by infembed."""


def check_choice(value, valid, key: str) -> None:
    """``value`` must be one of ``valid``; the error names the config ``key`` and lists the valid choices."""
    if not any(_same(value, choice) for choice in valid):
        raise ConfigError(f"{key}={value!r}: expected one of {', '.join(map(str, valid))}")


def _same(value, choice) -> bool:
    """Equal and of the same kind: ``1 == True`` in Python, but a boolean choice refuses the number 1."""
    return value == choice and isinstance(value, bool) == isinstance(choice, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(value, key: str, minimum: int = 0) -> None:
    """``value`` must be an integer (not a bool) >= ``minimum``."""
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise ConfigError(f"{key}={value!r}: expected an integer >= {minimum}")


def check_number(value, key: str, low: float = 0, high: float | None = None, bounds: str = "[]") -> None:
    """``value`` must be a number in the interval from ``low`` to ``high`` (None: unbounded); ``bounds`` gives
    which ends are included, e.g. ``"(]"``: low < value <= high."""
    above = _is_number(value) and (value >= low if bounds[0] == "[" else value > low)
    below = high is None or (_is_number(value) and (value <= high if bounds[1] == "]" else value < high))
    if not (above and below):
        if high is None:
            expected = f"a number {'>=' if bounds[0] == '[' else '>'} {low:g}"
        else:
            expected = f"a number in {bounds[0]}{low:g}, {high:g}{bounds[1]}"
        raise ConfigError(f"{key}={value!r}: expected {expected}")


def check_bool(value, key: str) -> None:
    """``value`` must be true or false (a YAML boolean), not a string or number that looks like one."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r}: expected true or false")


def run_command(main: Callable[[], object]) -> None:
    """Run a command-line ``main`` (``python -m ...`` or its console script): a user mistake prints one line, as
    run.py prints it, and exits 1; anything else keeps its traceback."""
    try:
        main()
    except UserError as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
