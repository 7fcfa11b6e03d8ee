"""Chat generators (``conf/generator/``): each maps conversations to answer texts, ``None`` for a request that kept
failing. ``name`` (the model, written into every row's provenance) and ``sampling`` are part of the cache key.

- :class:`OpenAIChat`: any OpenAI-compatible ``/chat/completions`` endpoint (vLLM, TGI, llama.cpp server, hosted
  APIs) through ``requests``, ``concurrency`` requests at a time; HTTP 408/429/5xx, timeouts and dropped connections
  are retried after ``backoff_s · 2^attempt`` seconds (a ``Retry-After`` header wins), ``max_retries`` times; the API
  key is read from the environment variable named by ``api_key_env``, never from a config file.
- :class:`TransformersChat`: a local Hugging Face causal LM, batched generation with the tokenizer's chat template
  (left padding), bf16 on a GPU.
- :class:`NoGenerator`: no LLM; the builder mines hard negatives and poisons by swaps inside the collection.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

from infembed.errors import ConfigError, UserError

log = logging.getLogger(__name__)
RETRIED_STATUS = (408, 429, 500, 502, 503, 504)


class GeneratorError(UserError):
    """The endpoint refused the request for a reason retrying cannot fix (bad key, unknown model, bad request)."""


class NoGenerator:
    """``generator=none``: nothing is generated or judged."""

    name = "none"
    writes_text = False
    sampling: dict = {}


class OpenAIChat:
    writes_text = True

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        concurrency: int = 8,
    ):
        if not model:
            raise ConfigError(
                "generator.model: the endpoint's model name is required (e.g. generator.model=NAME)"
            )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.name = model
        self.sampling = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed}
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self.concurrency = concurrency
        self.headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ConfigError(
                    f"generator.api_key_env={api_key_env}: that environment variable is not set"
                )
            self.headers["Authorization"] = f"Bearer {key}"

    def complete(self, conversations: list[list[dict]], on_answer: Callable[[int, str | None], None]) -> None:
        """``on_answer(index, text)`` in the worker thread that got the answer, before that worker sends its next
        request: a build killed at any moment has handed over every answer it received."""
        import requests

        def ask(index: int, messages: list[dict]) -> None:
            on_answer(index, self._request(session, messages))

        with requests.Session() as session, ThreadPoolExecutor(self.concurrency) as pool:
            for future in as_completed([pool.submit(ask, i, m) for i, m in enumerate(conversations)]):
                future.result()  # a GeneratorError reaches the caller

    def _request(self, session, messages: list[dict]) -> str | None:
        import requests

        body = {"model": self.name, "messages": messages} | {
            k: v for k, v in self.sampling.items() if v is not None
        }
        for attempt in range(self.max_retries + 1):
            wait = self.backoff_s * 2**attempt
            try:
                response = session.post(self.url, json=body, headers=self.headers, timeout=self.timeout_s)
            except (requests.Timeout, requests.ConnectionError) as error:
                log.warning("%s: %s (attempt %d)", self.url, type(error).__name__, attempt + 1)
            else:
                if response.status_code == 200:
                    return _message_text(response)
                if response.status_code not in RETRIED_STATUS:
                    raise GeneratorError(
                        f"{self.url}: HTTP {response.status_code} for model {self.name!r}: {response.text[:200]}"
                    )
                wait = _retry_after(response, wait)
                log.warning("%s: HTTP %d (attempt %d)", self.url, response.status_code, attempt + 1)
            if attempt < self.max_retries:
                time.sleep(wait)
        return None


def _retry_after(response, default: float) -> float:
    try:
        return float(response.headers.get("Retry-After", default))
    except ValueError:
        return default


def _message_text(response) -> str | None:
    """``choices[0].message.content`` of a chat-completions answer; ``None`` when the body is not one."""
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


class TransformersChat:
    writes_text = True

    def __init__(
        self,
        model: str,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        batch_size: int = 8,
        seed: int = 0,
        device: str = "auto",
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not model:
            raise ConfigError(
                "generator.model: a hub id or folder of a causal LM is required (generator.model=...)"
            )
        self.name = model
        self.sampling = {"temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed}
        self.batch_size = batch_size
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, padding_side="left")
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(self.device).eval()
        except OSError as error:  # not a folder, not on the hub or not cached offline
            raise ConfigError(
                f"generator.model={model}: cannot load a causal LM ({str(error).splitlines()[0]})"
            ) from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.tokenizer.chat_template is None:
            log.warning("%s has no chat template: conversations are written as 'role: content' lines", model)

    def prompt_text(self, messages: list[dict]) -> str:
        if self.tokenizer.chat_template is None:
            return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def complete(self, conversations: list[list[dict]], on_answer: Callable[[int, str | None], None]) -> None:
        """``on_answer(index, text)`` after each generated batch."""
        texts = [self.prompt_text(m) for m in conversations]
        for start in range(0, len(texts), self.batch_size):
            for offset, answer in enumerate(self._batch(texts[start : start + self.batch_size])):
                on_answer(start + offset, answer)

    def _batch(self, texts: list[str]) -> list[str]:
        import torch

        tokens = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )
        sample = self.sampling["temperature"] > 0
        torch.manual_seed(self.sampling["seed"])
        with torch.inference_mode():
            out = self.model.generate(
                **tokens,
                max_new_tokens=self.sampling["max_new_tokens"],
                do_sample=sample,
                temperature=self.sampling["temperature"] if sample else None,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
            )  # (b, prompt + new)
        new = out[:, tokens["input_ids"].shape[1] :]  # (b, new)
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)


class CachedChat:
    """A generator behind the response cache: ``ask(conversations, attempt)`` requests only the misses and stores
    each answer as soon as it arrives, so a build killed mid-batch loses at most the requests in flight.

    ``requests`` counts the conversations sent to the generator, ``failed`` those that got no answer."""

    def __init__(self, generator, cache, prompt_version: str):
        self.generator, self.cache, self.prompt_version = generator, cache, prompt_version
        self.requests = self.failed = 0
        self._lock = threading.Lock()

    def ask(self, conversations: list[list[dict]], attempt: int = 0) -> list[str | None]:
        from infembed.build.cache import response_key

        keys = [
            response_key(self.generator.name, self.prompt_version, m, self.generator.sampling, attempt)
            for m in conversations
        ]
        answers = [self.cache.get(k) for k in keys]
        missing = [i for i, a in enumerate(answers) if a is None]

        def store(position: int, answer: str | None) -> None:
            index = missing[position]
            answers[index] = answer
            if answer is not None:
                self.cache.put(keys[index], answer)
            with self._lock:
                self.failed += answer is None

        if missing:
            self.requests += len(missing)
            self.generator.complete([conversations[i] for i in missing], store)
        return answers
