"""Pair and passage text templates: the one definition shared by the training collator and the encoder.

The pair text is ``pair_template.format(query=Q, instruction=I)`` with surrounding whitespace stripped (so an empty
instruction at evaluation time leaves no dangling separator); it is tokenised once, as a finished string, in
training and in evaluation alike.
"""
from __future__ import annotations

PAIR_FIELDS = ("query", "instruction")
PASSAGE_FIELDS = ("passage",)


def check_template(template: str, fields: tuple[str, ...]) -> str:
    """A template must use exactly ``fields``, each at least once (e.g. {query} and {instruction})."""
    try:
        template.format(**{name: "" for name in fields})
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(f"template {template!r}: expected only the fields {list(fields)} ({error!r})") from None
    missing = [name for name in fields if "{" + name + "}" not in template]
    if missing:
        raise ValueError(f"template {template!r}: expected the fields {list(fields)}, missing {missing}")
    return template


def format_pair(template: str, query: str, instruction: str) -> str:
    return template.format(query=query, instruction=instruction).strip()


def format_passage(template: str, passage: str) -> str:
    return template.format(passage=passage)
