"""The generator backends on the real client paths: OpenAI-compatible HTTP against a local stub (429, timeout,
malformed answer, refused request), the response cache, strict JSON parsing, and a tiny random Qwen2 through
transformers (meaningless text, real batched generation with a chat template)."""

import pytest

from infembed.build.backends import CachedChat, GeneratorError, OpenAIChat, TransformersChat
from infembed.build.cache import ResponseCache, response_key
from infembed.build.prompts import ask_json, parse_poison, parse_verdict
from infembed.errors import ConfigError

from helpers.build import ChatStub, chat_lm

JUDGE = [{"role": "user", "content": "Query: q\nInstruction: i\nPassage: p"}]


def test_strict_json_answers():
    good = '{"instruction_positive": "a", "instruction_negative": "b", "query_negative": "c", "candidate": 2}'
    assert parse_poison(good, 3)["candidate"] == 2
    assert parse_poison(f"```json\n{good}\n```", 3) is not None
    assert parse_poison(good, 1) is None  # candidate out of range
    assert parse_poison("Here: " + good, 3) is None
    assert parse_poison(good.replace('"c"', '""'), 3) is None
    assert parse_verdict('{"satisfies": false}') is False
    assert parse_verdict('{"satisfies": "no"}') is None


def test_cache_key_covers_model_prompt_version_messages_sampling_and_attempt():
    base = ("m", "v1", JUDGE, {"temperature": 0}, 0)
    variants = [
        ("m2", *base[1:]),
        ("m", "v2", *base[2:]),
        ("m", "v1", [{"role": "user", "content": "x"}], *base[3:]),
        (*base[:3], {"temperature": 0.7}, 0),
        (*base[:4], 1),
    ]
    assert len({response_key(*base), *(response_key(*v) for v in variants)}) == 6


def test_http_backend_retries_429_and_timeout_counts_malformed_and_caches(tmp_path):
    with ChatStub(status={1: 429}, slow={2: 5.0}, malformed={3}) as stub:
        chat = CachedChat(
            OpenAIChat(stub.url, "stub-model", timeout_s=2, backoff_s=0.01, concurrency=1),
            ResponseCache(tmp_path),
            "v1",
        )
        verdicts, malformed = ask_json(chat, [JUDGE], parse_verdict, max_attempts=3)
        # request 1: 429, 2: timed out, 3: answered but not JSON (attempt 0), 4: the retry (attempt 1)
        assert verdicts == [True] and malformed == 1 and stub.requests == 4
        assert ask_json(chat, [JUDGE], parse_verdict, 3)[0] == [True] and stub.requests == 4  # from the cache
        assert chat.cache.hits == 2 and stub.models == {"stub-model"}


def test_http_backend_gives_up_after_max_retries(tmp_path):
    with ChatStub(status=dict.fromkeys(range(1, 10), 503)) as stub:
        chat = CachedChat(
            OpenAIChat(stub.url, "m", max_retries=2, backoff_s=0.01), ResponseCache(tmp_path), "v1"
        )
        assert chat.ask([JUDGE]) == [None] and stub.requests == 3 and chat.failed == 1


def test_http_backend_refused_request_is_one_line_and_key_comes_from_the_environment(monkeypatch):
    with ChatStub(status={1: 401}) as stub, pytest.raises(GeneratorError, match="HTTP 401 for model 'm'"):
        OpenAIChat(stub.url, "m").complete([JUDGE], lambda i, a: None)
    with pytest.raises(ConfigError, match="MY_KEY: that environment variable is not set"):
        OpenAIChat("http://127.0.0.1:1/v1", "m", api_key_env="MY_KEY")
    monkeypatch.setenv("MY_KEY", "secret")
    assert (
        OpenAIChat("http://127.0.0.1:1/v1", "m", api_key_env="MY_KEY").headers["Authorization"]
        == "Bearer secret"
    )


@pytest.fixture(scope="module")
def chat_qwen(tiny_qwen, tmp_path_factory):
    return chat_lm(tiny_qwen, tmp_path_factory.mktemp("chat_qwen"))


def test_transformers_backend_generates_batches_and_its_malformed_answers_are_counted(chat_qwen, tmp_path):
    generator = TransformersChat(chat_qwen, max_new_tokens=6, batch_size=2)
    assert generator.prompt_text(JUDGE).startswith("<user> Query: q") and generator.prompt_text(
        JUDGE
    ).endswith("<assistant>")
    conversations = [[{"role": "user", "content": f"Passage: text {n}" + " word" * n}] for n in range(3)]
    chat = CachedChat(generator, ResponseCache(tmp_path), "v1")
    verdicts, malformed = ask_json(chat, conversations, parse_verdict, max_attempts=2)
    assert verdicts == [None] * 3 and malformed == 6 and chat.requests == 6  # random weights: never JSON
    again = TransformersChat(
        chat_qwen, max_new_tokens=6, batch_size=3
    )  # greedy: batching does not change text
    answers = {}
    again.complete(conversations, answers.__setitem__)
    assert [answers[i] for i in range(3)] == chat.ask(conversations)
