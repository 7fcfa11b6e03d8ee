"""For the build tests: a labelled BEIR-style collection and a chat-completions stub server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from helpers.benchmarks import write_jsonl, write_qrels

TOPICS = (
    "volcanoes", "honeybees", "glaciers", "coral reefs", "solar panels",
    "penguins", "vaccines", "railways", "tea plantations", "lighthouses",
)  # fmt: skip
ASPECTS = {  # aspect -> (query, instruction, positive, two paraphrases of the positive)
    "history": (
        "What is the history of {t}?",
        "Find passages about how it developed over past centuries.",
        "The history of {t} goes back many centuries, and early records describe {t} in ancient texts.",
        "{t} have a long history going back many centuries; ancient texts already describe {t}.",
        "Records of {t} go back centuries, and the earliest ancient texts describe the history of {t}.",
    ),
    "cost": (
        "How much money do {t} bring to the economy?",
        "Find passages that give economic figures.",
        "The economic value of {t} is measured in billions of dollars every year.",
        "Every year {t} are worth billions of dollars to the economy.",
        "Economists measure the yearly value of {t} in billions of dollars.",
    ),
    "danger": (
        "Are {t} dangerous to people?",
        "Find passages that describe risks to human safety.",
        "Safety experts warn that {t} can seriously injure people who come too close.",
        "People who come too close to {t} can be seriously injured, safety experts warn.",
        "Experts on safety caution that getting near {t} may cause serious injuries.",
    ),
}


def collection(root: Path, topics=TOPICS, judged_negatives: bool = False) -> dict[str, set[str]]:
    """A BEIR folder (split ``train``): one query per (topic, aspect), one judged positive each, two unjudged
    paraphrases of it (false negatives); the other aspects' passages of the topic are true hard negatives.
    ``judged_negatives``: the other aspects' positives of the topic are in the qrels with score 0.
    Returns ``{query_id: false-negative doc ids}``."""
    corpus, queries, qrels, false_negatives = [], [], [], {}
    for t_index, topic in enumerate(topics):
        for aspect, (query, instruction, positive, para1, para2) in ASPECTS.items():
            qid, base = f"q-{t_index}-{aspect}", f"d-{t_index}-{aspect}"
            texts = {"pos": positive, "fn1": para1, "fn2": para2}
            corpus += [{"_id": f"{base}-{k}", "text": v.format(t=topic)} for k, v in texts.items()]
            queries.append({"_id": qid, "text": query.format(t=topic), "instruction": instruction})
            qrels.append((qid, f"{base}-pos", 1))
            others = [a for a in ASPECTS if a != aspect] if judged_negatives else []
            qrels += [(qid, f"d-{t_index}-{other}-pos", 0) for other in others]
            false_negatives[qid] = {f"{base}-fn1", f"{base}-fn2"}
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", queries)
    write_qrels(root / "qrels" / "train.tsv", qrels)
    return false_negatives


def chat_lm(config_folder: str, folder: Path) -> str:
    """A loadable causal LM: the random weights of ``config_folder``'s config (seed 0) and its tokenizer with a
    minimal chat template, saved in ``folder``."""
    shutil.copytree(config_folder, folder, dirs_exist_ok=True)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder)).save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}> {{ m.content }}\n{% endfor %}<assistant>"
    tokenizer.save_pretrained(folder)
    return str(folder)


def _line(text: str, label: str) -> str:
    match = re.search(rf"^{label}: (.*)$", text, flags=re.M)
    return match.group(1) if match else ""


class ChatStub:
    """An OpenAI-compatible ``POST /v1/chat/completions`` server speaking to the prompts of conf/prompts/v1.

    Poison prompts get a valid answer (candidate 1); judge prompts say a passage satisfies (Q, I) unless it is a
    positive the stub poisoned and (Q, I) is its poisoned pair. Faults by request number (1-based): ``status``
    {n: HTTP code}, ``slow`` {n: seconds before answering}, ``malformed`` {n}: a 200 whose text is not JSON.
    ``kill`` (n, callable): called when request n arrives, which then gets no answer."""

    def __init__(self, status=None, slow=None, malformed=(), kill=None):
        self.status, self.slow, self.malformed, self.kill = status or {}, slow or {}, set(malformed), kill
        self.requests, self.answered, self.models = 0, 0, set()
        self.poisoned: dict[str, tuple[str, str]] = {}  # positive -> (I-, Q-)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ChatStub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, prompt: str) -> str:
        if "Candidate passages" in prompt:
            query, positive = _line(prompt, "Query"), _line(prompt, "Relevant passage")
            negative = (
                f"Only passages that never mention {query.lower()}",
                f"{query} Answer for the year 3000.",
            )
            with self.lock:
                self.poisoned[positive] = negative
            return json.dumps(
                {
                    "instruction_positive": f"Passages that answer: {query}",
                    "instruction_negative": negative[0],
                    "query_negative": negative[1],
                    "candidate": 1,
                }
            )
        query, instruction, passage = (_line(prompt, k) for k in ("Query", "Instruction", "Passage"))
        poisoned = self.poisoned.get(passage)
        return json.dumps(
            {"satisfies": not (poisoned and (instruction == poisoned[0] or query == poisoned[1]))}
        )

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.requests += 1
                    number = stub.requests
                stub.models.add(body["model"])
                if stub.kill and number == stub.kill[0]:
                    stub.kill[1]()
                    return
                time.sleep(stub.slow.get(number, 0))
                if number in stub.status:
                    self._send(stub.status[number], {"error": {"message": "rate limited"}})
                    return
                text = "Sure! Here is the JSON you asked for." if number in stub.malformed else None
                text = text or stub.answer(body["messages"][-1]["content"])
                with stub.lock:
                    stub.answered += 1
                self._send(
                    200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
                )

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

        return Handler
