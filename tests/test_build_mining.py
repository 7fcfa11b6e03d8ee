"""Hard-negative mining and the TopK-PercPos false-negative filter, measured on a collection whose labels say which
unjudged passages are relevant (paraphrases of the judged positive), with the real MiniLM."""

import random

import pytest
import torch

from infembed.build.builder import Tally, load_collection, sample_pairs, swap_poison
from infembed.build.mining import Mined, Miner, MiningQuery, false_negative_mask
from infembed.eval.benchmarks import load_beir_folder
from infembed.models.encoder import BiEncoder

from helpers import MINILM
from helpers.build import collection


def test_mask_keeps_exactly_the_candidates_below_margin_times_the_positive():
    scores = torch.tensor([[0.90, 0.85, 0.50], [0.2, 0.1, 0.0]])
    keep = false_negative_mask(scores, torch.tensor([0.9, 0.2]), 0.95)
    assert keep.tolist() == [[False, True, True], [False, True, True]]


@pytest.fixture(scope="module")
def mined_collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    false_negatives = collection(root)
    bench = load_beir_folder(root, "train")
    miner = Miner(BiEncoder(MINILM), bench.corpus, bench.corpus_key)
    queries = [
        MiningQuery(
            bench.queries[q], bench.instructions[q], next(iter(bench.qrels[q])), frozenset(bench.qrels[q])
        )
        for q in bench.queries
    ]
    return miner, queries, [false_negatives[q] for q in bench.queries], bench


def quality(mined, false_negatives) -> dict:
    """Filter recall (false negatives dropped / false negatives retrieved), precision (false negatives among the
    dropped) and how often the hard negative a row would get (the first kept candidate) is a false negative."""
    retrieved = sum(len(fn & set(m.kept + m.suspected)) for m, fn in zip(mined, false_negatives))
    dropped = sum(len(m.suspected) for m in mined)
    dropped_fn = sum(len(fn & set(m.suspected)) for m, fn in zip(mined, false_negatives))
    first_is_fn = sum(bool(m.kept) and m.kept[0] in fn for m, fn in zip(mined, false_negatives))
    return {
        "recall": dropped_fn / retrieved,
        "precision": dropped_fn / dropped if dropped else 0.0,
        "first_is_false_negative": first_is_fn / len(mined),
    }


def test_judged_positives_never_come_back_and_candidates_are_ranked(mined_collection):
    miner, queries, _, bench = mined_collection
    for query, found in zip(queries, miner.mine(queries, top_k=8, margin=0.95)):
        assert not query.excluded & set(found.kept + found.suspected)
        assert len(found.kept) + len(found.suspected) == 8
        assert found.kept_scores == sorted(found.kept_scores, reverse=True)
        assert all(score < 0.95 * found.positive_score for score in found.kept_scores)


def test_filter_recall_and_precision_on_labelled_false_negatives(mined_collection):
    """Measured (MiniLM, 30 queries, 2 paraphrase false negatives each, top 8): margin 0.95 drops 50 of the 60
    retrieved false negatives and nothing else; without the filter every row's first hard negative is one."""
    miner, queries, false_negatives, _ = mined_collection
    table = {m: quality(miner.mine(queries, 8, m), false_negatives) for m in (0.9, 0.95, float("inf"))}
    for margin, q in table.items():
        print(f"margin {margin}: " + ", ".join(f"{k} {v:.2f}" for k, v in q.items()))
    assert table[0.95]["recall"] >= 0.8 and table[0.95]["precision"] >= 0.95
    assert table[0.9]["recall"] > table[0.95]["recall"]
    assert table[float("inf")]["recall"] == 0.0 and table[float("inf")]["first_is_false_negative"] == 1.0
    assert table[0.95]["first_is_false_negative"] <= 0.35


def test_swaps_do_not_depend_on_which_pairs_lost_their_candidates(tmp_path):
    """Builds that differ only in mining (e.g. the filter margin) give every surviving pair the same I-, Q-, HN2."""
    collection(tmp_path)
    bench = load_collection(str(tmp_path), "train", 1)
    pairs = sample_pairs(bench.positives, 1, None, random.Random(0))
    every = [Mined(1.0, kept=[next(iter(bench.corpus))]) for _ in pairs]
    some = [m if n % 2 else Mined(1.0) for n, m in enumerate(every)]
    full = swap_poison(bench, pairs, every, bench.positives, random.Random(7), Tally())
    tally = Tally()
    part = swap_poison(bench, pairs, some, bench.positives, random.Random(7), tally)
    assert len(part) == len(full) // 2 and tally.dropped == {"no_mined_candidate": len(full) - len(part)}
    assert [c.columns for c in part] == [c.columns for c in full[1::2]]
