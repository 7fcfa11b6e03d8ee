"""Versioned prompts (``conf/prompts/``) and strict JSON answers.

A prompt is a ``{system, user}`` pair of ``string.Template`` texts (``$query``, ``$instruction`` ...; JSON braces need
no escaping). An answer must be one JSON object (surrounding whitespace and one Markdown code fence allowed) with
the expected fields and types; anything else is malformed: asked again with the next ``attempt`` (a new cache key),
up to ``max_attempts`` times, and counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from string import Template


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str

    def messages(self, **fields: str) -> list[dict]:
        return [
            {"role": "system", "content": Template(self.system).substitute(fields).strip()},
            {"role": "user", "content": Template(self.user).substitute(fields).strip()},
        ]


@dataclass(frozen=True)
class PromptSet:
    """``poison``: write I+, I-, Q- and pick the candidate I- describes; ``judge``: does P satisfy (Q, I)?"""

    version: str
    poison: Prompt
    judge: Prompt

    @classmethod
    def from_dict(cls, cfg: dict) -> PromptSet:
        return cls(str(cfg["version"]), Prompt(**cfg["poison"]), Prompt(**cfg["judge"]))


def json_object(text: str | None) -> dict | None:
    """The JSON object ``text`` is (one surrounding ``` fence allowed), else None."""
    if text is None:
        return None
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and len(body) > 6:
        body = body[3:-3].removeprefix("json").strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def parse_poison(text: str | None, num_candidates: int) -> dict | None:
    """``{"instruction_positive", "instruction_negative", "query_negative": str, "candidate": 1..num_candidates}``."""
    value = json_object(text)
    fields = ("instruction_positive", "instruction_negative", "query_negative")
    if value is None or not all(isinstance(value.get(f), str) and value[f].strip() for f in fields):
        return None
    candidate = value.get("candidate")
    if not isinstance(candidate, int) or isinstance(candidate, bool) or not 1 <= candidate <= num_candidates:
        return None
    return {f: value[f].strip() for f in fields} | {"candidate": candidate}


def parse_verdict(text: str | None) -> bool | None:
    """``{"satisfies": true|false, ...}`` -> the boolean."""
    value = json_object(text)
    verdict = None if value is None else value.get("satisfies")
    return verdict if isinstance(verdict, bool) else None


def ask_json(chat, conversations: list[list[dict]], parse: Callable, max_attempts: int) -> tuple[list, int]:
    """Parsed answers (None where every attempt was malformed or failed) and the number of malformed answers."""
    parsed: list = [None] * len(conversations)
    pending, malformed = list(range(len(conversations))), 0
    for attempt in range(max_attempts):
        if not pending:
            break
        answers = chat.ask([conversations[i] for i in pending], attempt)
        for i, answer in zip(pending, answers):
            parsed[i] = parse(answer)
            malformed += answer is not None and parsed[i] is None
        pending = [i for i in pending if parsed[i] is None]
    return parsed, malformed
