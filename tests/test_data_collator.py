"""Collator: triplet layout and adjacency, tokenisation, instruction-swap sampling."""

import pickle

import pytest
import torch

from infembed.data.collator import TripletCollator, resolve_num_swap_negatives, sample_swaps
from infembed.data.dataset import POSITION
from infembed.data.schema import COLUMNS
from infembed.errors import ConfigError
from infembed.text import TextSpec

from helpers import MINILM

SPEC = TextSpec(MINILM)


@pytest.fixture(scope="module")
def tokenizer():
    return SPEC.hf_tokenizer


def row(i: int, instruction: str | None = None) -> dict:
    r = {c: f"{c.replace('_', ' ')} {i}" for c in COLUMNS}
    if instruction is not None:
        r["instruction_positive"] = instruction
    return r


def decode(tokenizer, encoded, i) -> str:
    ids = encoded["input_ids"][i][encoded["attention_mask"][i].bool()]
    return tokenizer.decode(ids, skip_special_tokens=True)


def test_rows_become_three_adjacent_triplets(tokenizer):
    rows = [row(0), row(1)]
    batch = TripletCollator(SPEC, num_swap_negatives=0)(rows)
    assert batch.swap_pairs is None and batch.swap_index is None and batch.swap_mask is None
    assert batch.pairs["input_ids"].shape[0] == batch.passages["input_ids"].shape[0] == 6
    passages = [decode(tokenizer, batch.passages, i) for i in range(6)]
    assert passages == [
        "document positive 0",
        "hard negative document 1 0",
        "hard negative document 2 0",
        "document positive 1",
        "hard negative document 1 1",
        "hard negative document 2 1",
    ]
    pairs = [decode(tokenizer, batch.pairs, i) for i in range(3)]
    assert pairs == [
        "query positive 0 instruction positive 0",
        "query positive 0 instruction negative 0",
        "query negative 0 instruction positive 0",
    ]


def test_template_padding_side_and_truncation(tokenizer):
    spec = SPEC.replace(
        pair_template="Instruct: {instruction} Query: {query}",
        passage_template="passage: {passage}",
        max_passage_length=5,
        padding_side="left",
    )
    collator = TripletCollator(spec, num_swap_negatives=0)
    batch = collator([row(0), dict(row(1), query_positive="a much longer query text than the others")])
    assert decode(tokenizer, batch.pairs, 0) == "instruct : instruction positive 0 query : query positive 0"
    assert batch.pairs["attention_mask"][0, 0] == 0 and batch.pairs["attention_mask"][0, -1] == 1  # left pad
    assert batch.passages["input_ids"].shape[1] == 5
    assert decode(tokenizer, batch.passages, 0) == "passage : document"  # template applied, then truncated


def test_bad_settings_are_rejected(tokenizer):
    with pytest.raises(ConfigError, match="model.padding_side"):
        SPEC.replace(padding_side="middle")
    with pytest.raises(ConfigError, match="model.pair_template"):
        SPEC.replace(pair_template="{query} {instr}")
    with pytest.raises(ConfigError, match="missing \\['passage'\\]"):
        SPEC.replace(passage_template="passage:")
    with pytest.raises(ConfigError, match="model.max_pair_length"):
        SPEC.replace(max_pair_length="long")
    with pytest.raises(ValueError, match="num_swap_negatives"):
        TripletCollator(SPEC, num_swap_negatives=-1)


def test_auto_k_is_the_papers_half_of_the_triplets_own_instruction_included_capped_at_six():
    # triplets per device -> K = min(B // 2, 6) instructions, the own one + K - 1 swaps; at least one swap
    assert [resolve_num_swap_negatives("auto", b) for b in (3, 6, 9, 10, 12, 24, 96)] == [1, 2, 3, 4, 5, 5, 5]
    assert resolve_num_swap_negatives(None, 96) == 5 and resolve_num_swap_negatives(9, 96) == 9


def swap_texts(tokenizer, batch) -> list[list[str]]:
    pairs = [decode(tokenizer, batch.pairs, i) for i in range(batch.pairs["input_ids"].shape[0])]
    pairs += [decode(tokenizer, batch.swap_pairs, i) for i in range(batch.swap_pairs["input_ids"].shape[0])]
    return [
        [pairs[j] for j, ok in zip(index.tolist(), mask.tolist()) if ok]
        for index, mask in zip(batch.swap_index, batch.swap_mask)
    ]


def test_swaps_point_at_the_right_texts_and_skip_duplicate_instructions(tokenizer):
    # rows 0 and 2 share I+; the siblings of a row share I+ too: none of those may be a negative
    rows = [row(0, "shared instruction"), row(1), row(2, "shared instruction"), row(3)]
    collator = TripletCollator(SPEC, num_swap_negatives=3, seed=5)
    batch = collator(rows)
    n = 12
    assert batch.swap_index.shape == batch.swap_mask.shape == (n, 3)
    assert batch.swap_index.dtype == torch.int64 and batch.swap_mask.dtype == torch.bool
    instructions = [
        t[0]
        for r in rows
        for t in ((r["instruction_positive"],), (r["instruction_negative"],), (r["instruction_positive"],))
    ]
    queries = [q for r in rows for q in (r["query_positive"],) * 2 + (r["query_negative"],)]
    unique = set(instructions)
    for i, texts in enumerate(swap_texts(tokenizer, batch)):
        assert len(texts) == min(3, len(unique) - 1) == len(set(texts))
        own = f"{queries[i]} {instructions[i]}".lower()
        allowed = {f"{queries[i]} {u}".lower() for u in unique if u != instructions[i]}
        assert own not in texts and set(texts) <= allowed
        if i % 3 == 0:  # the (I+, Q+) triplet always gets its row's I-
            assert f"{queries[i]} {rows[i // 3]['instruction_negative']}".lower() in texts


def test_swap_pairs_are_unique_and_new(tokenizer):
    batch = TripletCollator(SPEC, num_swap_negatives=4, seed=1)([row(i) for i in range(4)])
    pairs = {decode(tokenizer, batch.pairs, i) for i in range(12)}
    swaps = [decode(tokenizer, batch.swap_pairs, i) for i in range(batch.swap_pairs["input_ids"].shape[0])]
    assert len(swaps) == len(set(swaps)) and not pairs & set(swaps)
    first_of_row = batch.swap_index[0::3, 0]  # designed I- of the first triplet = the second triplet's pair
    assert first_of_row.tolist() == [1, 4, 7, 10]


def test_padding_slots_when_fewer_candidates_than_k(tokenizer):
    batch = TripletCollator(SPEC, num_swap_negatives=5)([row(0)])  # 2 distinct instructions only
    assert batch.swap_mask.sum(1).tolist() == [1, 1, 1]
    assert batch.swap_pairs["input_ids"].shape[0] == 1  # Q- ⊕ I-; Q+ ⊕ I± are pair texts already
    identical = TripletCollator(SPEC, num_swap_negatives=2)(
        [dict(row(0), instruction_negative="instruction positive 0")]
    )
    assert not identical.swap_mask.any() and identical.swap_pairs["input_ids"].shape == (0, 0)


def test_sampling_is_uniform_over_candidates_and_seeded():
    ids, designed = torch.tensor([0, 1, 2, 0]), torch.tensor([3, -1, -1, -1])
    draws = torch.stack(
        [sample_swaps(ids, designed, 6, 2, torch.Generator().manual_seed(s))[0] for s in range(400)]
    )
    assert (draws[:, 0, 0] == 3).all()  # designed first
    counts = torch.bincount(draws[:, 1, :].flatten(), minlength=6)  # triplet 1: candidates {0, 2, 3, 4, 5}
    assert counts[1] == 0 and (counts[[0, 2, 3, 4, 5]] > 100).all()
    again = sample_swaps(ids, designed, 6, 2, torch.Generator().manual_seed(7))[0]
    assert torch.equal(again, sample_swaps(ids, designed, 6, 2, torch.Generator().manual_seed(7))[0])


def test_collator_seed_changes_samples_and_pickles_without_tokenizer():
    name = MINILM
    rows = [row(i) for i in range(8)]
    a, b = (
        TripletCollator(TextSpec(name), num_swap_negatives=3, seed=0),
        TripletCollator(TextSpec(name), num_swap_negatives=3, seed=0),
    )
    first = a(rows).swap_index
    assert torch.equal(first, b(rows).swap_index)  # same seed, same rows: the collator keeps no state
    at = [dict(r, **{POSITION: (0, 0, i)}) for i, r in enumerate(rows)]  # as the stream stamps them
    later = [dict(r, **{POSITION: (1, 0, i)}) for i, r in enumerate(rows)]  # the same rows in the next pass
    assert torch.equal(a(at).swap_index, b(at).swap_index) and not torch.equal(
        a(at).swap_index, a(later).swap_index
    )
    assert not torch.equal(
        first, TripletCollator(TextSpec(name), num_swap_negatives=3, seed=9)(rows).swap_index
    )
    clone = pickle.loads(pickle.dumps(a))  # what a DataLoader worker receives: strings, no tokenizer object
    assert clone.text == a.text and torch.equal(clone(rows).swap_index, a(rows).swap_index)
