"""LLM responses on disk, keyed by the content hash of everything that determines them.

key = blake2b(JSON of {model, prompt_version, messages, sampling, attempt}); one file per response under
``cache_dir/<key[:2]>/<key>.json``, written atomically, so an interrupted build resumes without asking again and a
re-run reads the same answers. ``attempt`` separates the retries of a malformed answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path


def response_key(model: str, prompt_version: str, messages: list[dict], sampling: dict, attempt: int) -> str:
    material = {
        "model": model,
        "prompt_version": prompt_version,
        "messages": messages,
        "sampling": sampling,
        "attempt": attempt,
    }
    return hashlib.blake2b(json.dumps(material, sort_keys=True).encode(), digest_size=20).hexdigest()


class ResponseCache:
    """``get(key) -> text | None`` and ``put(key, text)``; ``cache_dir=None`` caches nothing."""

    def __init__(self, cache_dir: str | os.PathLike | None):
        self.root = Path(cache_dir) if cache_dir else None
        self.hits = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        if self.root is None or not self._path(key).is_file():
            return None
        self.hits += 1
        return json.loads(self._path(key).read_text(encoding="utf-8"))["response"]

    def put(self, key: str, response: str) -> None:
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")  # one per writer thread
        tmp.write_text(json.dumps({"response": response}), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a killed build never leaves half an answer
