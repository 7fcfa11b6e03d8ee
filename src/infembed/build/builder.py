"""The build: (query, positive) pairs of a BEIR-style collection → validated InF-IR rows + summary.json.

Per pair (Q+ with its instruction, judged positive P+):

1. mine: the encoder's top candidates for (Q+, I) over the corpus, judged positives excluded, TopK-PercPos filter
   (``mining.negatives=judged``: only the query's judged non-relevant documents, ranked by the encoder, no filter);
2. poison, with an LLM (``generator=openai|transformers``): the ``poison`` prompt shows Q+, P+ and the first
   ``mining.candidates_shown`` mined candidates and must answer I+ (satisfied by P+, specific to Q+), I- (a minimal
   edit of I+ that P+ no longer satisfies but the chosen candidate does) and Q- (a minimal edit of Q+ that P+ no
   longer answers); hard_negative_document_1 = the chosen candidate, hard_negative_document_2 = the encoder's top
   passage for (Q-, I+) other than P+ and hard_negative_document_1.
   Without one (``generator=none``): I+ = the query's instruction, I- = the instruction of another query that differs
   from it, Q- = another query, hard_negative_document_2 = one of that query's judged positives, and
   hard_negative_document_1 = the top filtered mined candidate (a hard negative of (I+, Q+), not checked to satisfy
   (I-, Q+));
3. validate: cheap checks (I- ≠ I+, Q- ≠ Q+, text lengths, a negative equal to P+, duplicate rows), then, with an
   LLM and ``judge=true``, the ``judge`` prompt on the three triplets (must satisfy) and on the poisoned pairs
   (I-, Q+, P+) and (I+, Q-, P+) (must not). A row failing any of them is dropped and counted under its reason.

``refresh_from=ROWS`` instead re-mines existing InF-IR rows: hard_negative_document_1 becomes the encoder's top
filtered candidate for (Q+, I+) among all passages of the rows (the row's own passages and every P+ of the same
(Q+, I+) excluded); the other columns stay. Rows are written atomically (``.jsonl`` or ``.parquet``); extra provenance columns ride along and are
ignored by ``data=local``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from infembed.build.backends import CachedChat
from infembed.build.cache import ResponseCache
from infembed.build.mining import Miner, MiningQuery
from infembed.build.prompts import PromptSet, ask_json, parse_poison, parse_verdict
from infembed.data.schema import COLUMNS
from infembed.errors import ConfigError, UserError

log = logging.getLogger("infembed")
OUTPUT_SUFFIXES = (".jsonl", ".parquet")
# triplet name -> (instruction column, query column, passage column, the judge must say it satisfies)
JUDGED = {
    "positive": ("instruction_positive", "query_positive", "document_positive", True),
    "instruction_negative": ("instruction_negative", "query_positive", "hard_negative_document_1", True),
    "query_negative": ("instruction_positive", "query_negative", "hard_negative_document_2", True),
    "poisoned_instruction": ("instruction_negative", "query_positive", "document_positive", False),
    "poisoned_query": ("instruction_positive", "query_negative", "document_positive", False),
}


class BuildError(UserError):
    """The build cannot produce rows (nothing accepted, no judged positives, a bad output path)."""


@dataclass
class Candidate:
    """A row in the making: the seven columns, the documents' ids and the judge's verdicts."""

    query_id: str
    columns: dict[str, str]
    document_ids: list[str]
    verdicts: dict[str, bool] = field(default_factory=dict)


@dataclass
class Tally:
    pairs: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)
    mining: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def check_output(output: str) -> Path:
    path = Path(output)
    if path.suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(f"build.output={output}: expected a path ending in {' or '.join(OUTPUT_SUFFIXES)}")
    return path


def build_data(encoder, generator, prompts: dict, output_dir: Path, **build) -> dict:
    """Run the build described by the ``build`` config keys; returns the summary (also in summary.json)."""
    output = check_output(build["output"])
    chat = CachedChat(generator, ResponseCache(build["cache_dir"]), str(prompts["version"]))
    tally = Tally()
    if build.get("refresh_from"):
        if generator.writes_text:
            raise ConfigError("build.refresh_from re-mines hard negatives only: use generator=none with it")
        rows = refresh_rows(encoder, build, tally)
    else:
        rows = collection_rows(encoder, chat, PromptSet.from_dict(prompts), build, tally)
    summary = summarise(tally, rows, chat, encoder, build, output)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log.info("build summary\n%s", summary_table(summary))
    if not rows:
        unanswered = f"; {chat.failed} of {chat.requests} requests got no answer" if chat.failed else ""
        raise BuildError(
            f"no row accepted out of {tally.pairs} pairs: {tally.dropped}{unanswered} "
            f"(see {output_dir}/summary.json)"
        )
    write_rows(rows, output)
    log.info("%d rows written to %s", len(rows), output)
    return summary


# --- pairs and mining


@dataclass
class Collection:
    """One or several BEIR folders as one: with several, every id is prefixed ``"<folder name>/"``."""

    corpus: dict[str, str]
    queries: dict[str, str]
    instructions: dict[str, str]
    positives: dict[str, list[str]]  # query id -> judged positives (score >= that folder's min_relevance)
    judged_negatives: dict[str, list[str]]  # query id -> judged documents below it
    corpus_key: str


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def load_collection(inputs, split: str, min_relevance) -> Collection:
    """``inputs`` a folder or a list; ``min_relevance`` a number or one per folder."""
    from infembed.eval.benchmarks import load_benchmark

    folders, thresholds = _as_list(inputs), _as_list(min_relevance)
    if len(thresholds) == 1:
        thresholds *= len(folders)
    if len(thresholds) != len(folders):
        raise ConfigError(
            f"build.min_relevance={min_relevance}: expected one number, or one per build.input folder "
            f"({len(folders)})"
        )
    merged = Collection({}, {}, {}, {}, {}, "")
    for folder, threshold in zip(folders, thresholds):
        bench = load_benchmark(str(folder), split, "beir")
        prefix = f"{bench.name}/" if len(folders) > 1 else ""
        merged.corpus |= {prefix + d: text for d, text in bench.corpus.items()}
        merged.queries |= {prefix + q: text for q, text in bench.queries.items()}
        merged.instructions |= {prefix + q: text for q, text in bench.instructions.items()}
        for qid, docs in bench.qrels.items():
            judged = [(prefix + d, score) for d, score in docs.items() if d in bench.corpus]
            merged.positives[prefix + qid] = [d for d, score in judged if score >= threshold]
            merged.judged_negatives[prefix + qid] = [d for d, score in judged if score < threshold]
        merged.corpus_key += bench.corpus_key
    merged.corpus_key = hashlib.blake2b(merged.corpus_key.encode(), digest_size=16).hexdigest()
    return merged


def sample_pairs(positives: dict[str, list[str]], per_query: int, max_rows, rng: random.Random):
    pairs = [(q, d) for q, docs in positives.items() for d in rng.sample(docs, min(per_query, len(docs)))]
    rng.shuffle(pairs)
    return pairs[:max_rows] if max_rows else pairs


def mining_queries(bench: Collection, pairs, negatives: str) -> list[MiningQuery]:
    """``negatives=mined``: the whole corpus; ``judged``: only the query's judged non-relevant documents."""
    return [
        MiningQuery(
            bench.queries[q],
            bench.instructions[q],
            d,
            frozenset(bench.positives[q]),
            frozenset(bench.judged_negatives[q]) if negatives == "judged" else None,
        )
        for q, d in pairs
    ]


def collection_rows(encoder, chat: CachedChat, prompts: PromptSet, build: dict, tally: Tally) -> list[dict]:
    if not build.get("input"):
        raise ConfigError(
            "task=build_data needs build.input=DIR (a BEIR-style folder) or build.refresh_from=ROWS"
        )
    bench = load_collection(build["input"], build["split"], build["min_relevance"])
    rng = random.Random(build["seed"])
    positives = bench.positives
    pairs = sample_pairs(positives, build["positives_per_query"], build["max_rows"], rng)
    if not pairs:
        raise BuildError(
            f"{build['input']}: no qrels row of split {build['split']!r} has score >= {build['min_relevance']}"
        )
    tally.pairs = len(pairs)
    mining = build["mining"]
    miner = Miner(encoder, bench.corpus, bench.corpus_key, build["embedding_cache_dir"], mining["batch_size"])
    judged_only = (
        mining["negatives"] == "judged"
    )  # judged non-relevant documents need no false-negative filter
    mined = miner.mine(
        mining_queries(bench, pairs, mining["negatives"]),
        mining["top_k"],
        float("inf") if judged_only else mining["margin"],
    )
    tally.mining = mining_counts(mined, [bench.judged_negatives[q] for q, _ in pairs])
    if chat.generator.writes_text:
        candidates = llm_poison(chat, prompts, bench, pairs, mined, miner, build, tally)
    else:
        candidates = swap_poison(bench, pairs, mined, positives, rng, tally)
    candidates = consistent(candidates, build["checks"], tally)
    if chat.generator.writes_text and build["judge"]:
        candidates = judged(chat, prompts, candidates, build["max_attempts"], tally)
    return [row_of(c, chat, prompts.version, encoder, build) for c in candidates]


def mining_counts(mined, judged_negatives) -> dict[str, int]:
    """What the filter dropped, and how the judgements (when the collection has non-relevant ones) see it:
    a dropped candidate judged non-relevant was a true negative dropped by mistake."""
    judged = [set(j) for j in judged_negatives]
    return {
        "suspected_false_negatives": sum(len(m.suspected) for m in mined),
        "suspected_judged_non_relevant": sum(len(j & set(m.suspected)) for m, j in zip(mined, judged)),
        "first_candidate_judged_non_relevant": sum(
            bool(m.kept) and m.kept[0] in j for m, j in zip(mined, judged)
        ),
        "first_candidate_unjudged": sum(bool(m.kept) and m.kept[0] not in j for m, j in zip(mined, judged)),
    }


# --- poisoning


def swap_poison(bench, pairs, mined, positives, rng: random.Random, tally: Tally) -> list[Candidate]:
    """I-, Q- and hard_negative_document_2 from other queries of the collection; hard_negative_document_1 mined.

    The swaps are drawn for every pair before its mining result is looked at, so builds that differ only in how
    negatives are mined (or filtered) give each pair the same swaps."""
    answerable = [q for q, docs in positives.items() if docs]
    out = []
    for (qid, positive), found in zip(pairs, mined):
        instruction = bench.instructions[qid]
        others = [q for q in answerable if bench.instructions[q] != instruction]
        other_queries = [q for q in answerable if bench.queries[q] != bench.queries[qid]]
        if not others or not other_queries:
            tally.drop("no_other_instruction" if not others else "no_other_query")
            continue
        swap = rng.choice(other_queries)
        hn2 = rng.choice(positives[swap])
        instruction_negative = bench.instructions[rng.choice(others)]
        if not found.kept:
            tally.drop("no_mined_candidate")
            continue
        hn1 = found.kept[0]
        columns = {
            "query_positive": bench.queries[qid],
            "query_negative": bench.queries[swap],
            "instruction_positive": instruction,
            "instruction_negative": instruction_negative,
            "document_positive": bench.corpus[positive],
            "hard_negative_document_1": bench.corpus[hn1],
            "hard_negative_document_2": bench.corpus[hn2],
        }
        out.append(Candidate(qid, columns, [positive, hn1, hn2]))
    return out


def poison_messages(prompts: PromptSet, bench, qid: str, positive: str, shown: list[str]) -> list[dict]:
    listed = "\n".join(f"[{i}] {bench.corpus[d]}" for i, d in enumerate(shown, start=1))
    return prompts.poison.messages(
        query=bench.queries[qid],
        instruction=bench.instructions[qid] or "(none)",
        positive=bench.corpus[positive],
        candidates=listed,
    )


def llm_poison(
    chat, prompts, bench, pairs, mined, miner: Miner, build: dict, tally: Tally
) -> list[Candidate]:
    shown_count = build["mining"]["candidates_shown"]
    usable = [(p, m.kept[:shown_count]) for p, m in zip(pairs, mined) if len(m.kept) >= shown_count]
    for _ in range(len(pairs) - len(usable)):
        tally.drop("too_few_candidates")
    conversations = [poison_messages(prompts, bench, q, d, shown) for (q, d), shown in usable]
    parse = functools.partial(parse_poison, num_candidates=shown_count)
    answers, tally.malformed["poison"] = ask_json(chat, conversations, parse, build["max_attempts"])
    written = []
    for ((qid, positive), shown), answer in zip(usable, answers):
        if answer is None:
            tally.drop("no_valid_poison_answer")
        else:
            written.append((qid, positive, shown[answer["candidate"] - 1], answer))
    second = miner.mine(
        [
            MiningQuery(a["query_negative"], a["instruction_positive"], p, frozenset({p, hn1}))
            for _, p, hn1, a in written
        ],
        top_k=1,
        margin=float("inf"),
    )
    out = []
    for (qid, positive, hn1, answer), found in zip(written, second):
        if not found.kept:
            tally.drop("no_mined_candidate")
            continue
        columns = {
            "query_positive": bench.queries[qid],
            "query_negative": answer["query_negative"],
            "instruction_positive": answer["instruction_positive"],
            "instruction_negative": answer["instruction_negative"],
            "document_positive": bench.corpus[positive],
            "hard_negative_document_1": bench.corpus[hn1],
            "hard_negative_document_2": bench.corpus[found.kept[0]],
        }
        out.append(Candidate(qid, columns, [positive, hn1, found.kept[0]]))
    return out


# --- validation


def _same(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def consistency_problem(columns: dict[str, str], checks: dict) -> str | None:
    """The first cheap check a row fails, or None."""
    if _same(columns["instruction_negative"], columns["instruction_positive"]):
        return "instruction_negative_equals_positive"
    if _same(columns["query_negative"], columns["query_positive"]):
        return "query_negative_equals_positive"
    if any(
        _same(columns[c], columns["document_positive"])
        for c in ("hard_negative_document_1", "hard_negative_document_2")
    ):
        return "hard_negative_equals_positive"
    lengths = [len(columns[c].strip()) for c in COLUMNS]
    if min(lengths) < checks["min_chars"] or max(lengths) > checks["max_chars"]:
        return "length"
    return None


def consistent(candidates: list[Candidate], checks: dict, tally: Tally) -> list[Candidate]:
    seen, out = set(), []
    for c in candidates:
        problem = consistency_problem(c.columns, checks)
        key = tuple(" ".join(c.columns[k].casefold().split()) for k in COLUMNS[:5])
        if problem is None and key in seen:
            problem = "duplicate"
        if problem:
            tally.drop(problem)
        else:
            seen.add(key)
            out.append(c)
    return out


def judged(
    chat, prompts: PromptSet, candidates: list[Candidate], max_attempts: int, tally: Tally
) -> list[Candidate]:
    """Five verdicts per row; a row stays when every verdict is the expected one."""
    conversations = [
        prompts.judge.messages(instruction=c.columns[i], query=c.columns[q], passage=c.columns[p])
        for c in candidates
        for i, q, p, _ in JUDGED.values()
    ]
    verdicts, tally.malformed["judge"] = ask_json(chat, conversations, parse_verdict, max_attempts)
    out = []
    for n, c in enumerate(candidates):
        c.verdicts = dict(zip(JUDGED, verdicts[n * len(JUDGED) : (n + 1) * len(JUDGED)]))
        wrong = [name for name, (*_, expected) in JUDGED.items() if c.verdicts[name] is not expected]
        if any(v is None for v in c.verdicts.values()):
            tally.drop("no_valid_judge_answer")
        elif wrong:
            tally.drop(f"judge_{wrong[0]}")
        else:
            out.append(c)
    return out


# --- refresh


def text_id(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def refresh_rows(encoder, build: dict, tally: Tally) -> list[dict]:
    from infembed.data.schema import SOURCE, SkipStats
    from infembed.data.sources import read_file_rows, resolve_files

    rows = [
        r for path in resolve_files(build["refresh_from"]) for r in read_file_rows(path, "raise", SkipStats())
    ]
    corpus = {text_id(r[c]): r[c] for r in rows for c in COLUMNS[4:]}
    key = hashlib.blake2b("".join(sorted(corpus)).encode(), digest_size=16).hexdigest()
    mining = build["mining"]
    miner = Miner(encoder, corpus, key, build["embedding_cache_dir"], mining["batch_size"])
    judged: dict[tuple[str, str], set[str]] = {}  # (Q+, I+) -> every P+ the rows give it
    for r in rows:
        judged.setdefault((r["query_positive"], r["instruction_positive"]), set()).add(
            text_id(r["document_positive"])
        )
    queries = [
        MiningQuery(
            r["query_positive"],
            r["instruction_positive"],
            text_id(r["document_positive"]),
            frozenset(
                {text_id(r[c]) for c in COLUMNS[4:]} | judged[r["query_positive"], r["instruction_positive"]]
            ),
        )
        for r in rows
    ]
    mined = miner.mine(queries, mining["top_k"], mining["margin"])
    tally.pairs = len(rows)
    tally.mining = mining_counts(mined, [[] for _ in mined])
    out = []
    for row, found in zip(rows, mined):
        source = row.pop(SOURCE)
        if not found.kept:
            tally.drop("no_mined_candidate")
            continue
        row["hard_negative_document_1"] = corpus[found.kept[0]]
        out.append(row | {"source_row": source, "mining_encoder": encoder_name(encoder, build)})
    return out


# --- output


def encoder_name(encoder, build: dict) -> str:
    return build.get("encoder_name") or getattr(encoder, "backbone_name", type(encoder).__name__)


def row_of(c: Candidate, chat: CachedChat, prompt_version: str, encoder, build: dict) -> dict:
    llm = chat.generator.writes_text
    return c.columns | {
        "source_query_id": c.query_id,
        "source_document_ids": list(c.document_ids),
        "generator_model": chat.generator.name,
        "judge_model": chat.generator.name if llm and build["judge"] else "none",
        "prompt_version": prompt_version if llm else "none",
        "mining_encoder": encoder_name(encoder, build),
        "verdicts": json.dumps(c.verdicts, sort_keys=True),
    }


def write_rows(rows: list[dict], output: Path) -> None:
    """All rows or nothing: written to a temporary file beside ``output``, then renamed."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
    if output.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), tmp)
    else:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, output)


def summarise(tally: Tally, rows: list[dict], chat: CachedChat, encoder, build: dict, output: Path) -> dict:
    llm = chat.generator.writes_text
    return {
        "mode": "refresh" if build.get("refresh_from") else "collection",
        "pairs": tally.pairs,
        "accepted": len(rows),
        "acceptance_rate": len(rows) / tally.pairs if tally.pairs else 0.0,
        "dropped": dict(sorted(tally.dropped.items())),
        "malformed_answers": tally.malformed,
        "mining": tally.mining,
        "requests": chat.requests,
        "failed_requests": chat.failed,
        "cache_hits": chat.cache.hits,
        "generator_model": chat.generator.name,
        "judge_model": chat.generator.name if llm and build["judge"] else "none",
        "prompt_version": chat.prompt_version if llm else "none",
        "mining_encoder": encoder_name(encoder, build),
        "margin": build["mining"]["margin"],
        "output": str(output),
    }


def summary_table(summary: dict) -> str:
    lines = [
        "| what | count |",
        "|---|---:|",
        f"| pairs | {summary['pairs']} |",
        f"| accepted | {summary['accepted']} |",
    ]
    lines += [f"| dropped: {reason} | {n} |" for reason, n in summary["dropped"].items()]
    lines += [f"| malformed answers: {step} | {n} |" for step, n in summary["malformed_answers"].items()]
    lines += [
        *(f"| mining: {what.replace('_', ' ')} | {n} |" for what, n in summary["mining"].items()),
        f"| requests / cache hits / failed | {summary['requests']} / {summary['cache_hits']} / {summary['failed_requests']} |",
        f"| acceptance rate | {100 * summary['acceptance_rate']:.1f} % |",
    ]
    return "\n".join(lines)
