"""Collator: rows → three adjacent triplets each → tokenised pairs, passages and sampled instruction swaps.

Runs inside the DataLoader workers (tokenisation there, dynamic padding to the longest text of the batch).

Instruction-swap sampling (docs/method.md, "Swap sampling"), for triplet i with instruction I_i, query Q_i, passage
p_i:
    candidates  C_i = { distinct instruction texts u of the batch : u ≠ I_i }  (no duplicate of I_i)
                mask_false_swaps (rows with labels, see data.schema): minus every u that p_i satisfies, since
                (Q_i, u, p_i) is then a valid triplet, not a negative
    designed    the row's I- for its (I+, Q+) triplet, always in S_i when it differs from I+ (and is in C_i)
    S_i         designed ∪ uniform sample without replacement from the rest of C_i, |S_i| = min(K, |C_i|)
    false_swap_rate r > 0 (a dose of known false negatives, for experiments): each slot of S_i is, with
                probability r, replaced by one of p_i's decoys (labels["decoys"]: instructions p_i satisfies)
Vectorised: one (N, U) score matrix (uniform noise, designed = 2, invalid = -inf) and one top-k, drawn from a
generator seeded by (seed, stream position of the batch's first row): the collator keeps no state, so a resumed run
draws exactly what the uninterrupted run drew for the same batch.
The fusion (the encoder's ``fusion``, passed in by the DataModule) decides what is tokenised for the pairs:

- ``concat``: the swapped text Q_i ⊕ I_j is the pair template applied to (Q_i, I_j) (cut by the text spec's
  ``truncation``, as every pair); a swapped pair that already is a pair of the batch (e.g. (Q+, I-) is the pair of
  the row's second triplet) is not encoded again:
      z_{i←j} = cat([pair_embeddings, swap_pair_embeddings])[swap_index[i, k]]
- ``attention`` (infembed.models.fusion): each triplet's query (the pair template with an empty instruction) and
  raw instruction are tokenised separately and no swap text is built: swap_index[i, k] = j, the first triplet whose
  instruction is the sampled one, and z_{i←j} is fused from query i's and instruction j's token states.
"""

from __future__ import annotations

import dataclasses

import torch

from infembed.data.dataset import POSITION, derive_seed
from infembed.data.schema import SOURCE, TRIPLETS_PER_ROW, expand_decoys, expand_labels, expand_row, satisfies
from infembed.text import FUSIONS, TextSpec

AUTO = "auto"
Tokens = dict[str, torch.Tensor]  # {input_ids, attention_mask}: (B, L)


@dataclasses.dataclass
class TripletBatch:
    """One collated batch (CPU tensors until Lightning moves it), N = 3 · rows triplets.

    passages     (N, Lp)  passage_template.format(passage=P_i)
    sources      (rows,)  where each row came from ("FILE line N" or the hub row), for error messages
    fusion concat:
    pairs        (N, Lq)  pair_template.format(query=Q_i, instruction=I_i)
    fusion attention (pairs is None):
    queries      (N, Lq)  pair_template.format(query=Q_i, instruction="")
    instructions (N, Li)  I_i as is
    only when num_swap_negatives K > 0:
    swap_pairs   (S, Ls)  concat only: unique swapped (Q_i, I_j) that are no pair of the batch (S ≥ 0)
    swap_index   (N, K)   int64; concat: into cat([pairs, swap_pairs]); attention: into instructions (query i's own)
    swap_mask    (N, K)   bool, False for padding slots
    """

    pairs: Tokens | None
    passages: Tokens
    sources: list[str] = dataclasses.field(default_factory=list)
    swap_pairs: Tokens | None = None
    swap_index: torch.Tensor | None = None
    swap_mask: torch.Tensor | None = None
    queries: Tokens | None = None
    instructions: Tokens | None = None

    @property
    def num_triplets(self) -> int:
        return self.passages["input_ids"].shape[0]


PAPER_INSTRUCTIONS_PER_TRIPLET = 6  # the paper's K: the own instruction plus 5 swaps (12 triplets per device)


def resolve_num_swap_negatives(value: int | str | None, triplets_per_device: int) -> int:
    """Sampled swap negatives per triplet: an int ≥ 0 as given, or None/"auto" →
    clamp(min(B // 2, 6) − 1, 1, 5), B = triplets per device.

    The paper's rule: K = B / 2 instructions per triplet with B counted in triplets, the own instruction plus
    K − 1 sampled ones, capped at its K = 6 (so at most 5 swaps): at 12 triplets (4 rows) 5 swaps, at 24 (the
    default 8 rows) 5, at 6 (2 rows) 2. The swap texts of a step are then at most 5·N. An explicit value is
    never capped.
    """
    if value is None or value == AUTO:
        paper_k = min(triplets_per_device // 2, PAPER_INSTRUCTIONS_PER_TRIPLET)
        return max(1, paper_k - 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"num_swap_negatives={value!r}: expected an int >= 0, None or {AUTO!r}")
    return value


def sample_swaps(
    instruction_ids: torch.Tensor,
    designed: torch.Tensor,
    num_unique: int,
    k: int,
    generator: torch.Generator,
    excluded: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample K distinct instruction ids per triplet, never its own nor an excluded one, the designed one first.

    instruction_ids: (N,) id of each triplet's instruction text; designed: (N,) designed negative id or -1;
    excluded: (N, U) bool, True = never a candidate of that triplet (a false negative), or None.
    Returns (chosen ids (N, K) int64, valid mask (N, K) bool); invalid slots hold id 0.
    """
    n = instruction_ids.shape[0]
    scores = torch.rand((n, num_unique), generator=generator)  # (N, U)
    columns = torch.arange(num_unique)  # (U,)
    has_designed = designed >= 0  # (N,)
    rows = torch.nonzero(has_designed).squeeze(1)
    scores[rows, designed[rows]] = 2.0  # above any uniform score, so top-k always keeps it
    scores[columns[None, :] == instruction_ids[:, None]] = float("-inf")  # own instruction text
    if excluded is not None:
        scores[excluded] = float("-inf")
    values, chosen = scores.topk(min(k, num_unique), dim=1)  # (N, min(K, U))
    valid = values > float("-inf")
    pad = k - chosen.shape[1]
    chosen = torch.nn.functional.pad(chosen, (0, pad))  # (N, K)
    valid = torch.nn.functional.pad(valid, (0, pad), value=False)  # (N, K)
    return torch.where(valid, chosen, 0), valid


def check_false_swap_rate(rate: float, fusion: str) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError(f"data.false_swap_rate={rate!r}: expected a number in [0, 1]")
    if rate > 0 and fusion != "concat":
        raise ValueError(
            f"data.false_swap_rate={rate} needs model.fusion=concat: decoy instructions are not in the batch, so "
            "the attention fusion has no token states for them"
        )


def satisfied_matrix(rows: list[dict], instructions: list[str], unique: list[str]) -> torch.Tensor:
    """(N, U) bool: triplet i's passage satisfies the constraints of distinct instruction u (data.schema labels;
    an instruction's constraints are those of the first triplet holding it). False where labels are missing."""
    triplet_labels = [labels for row in rows for labels in (expand_labels(row) or [None] * TRIPLETS_PER_ROW)]
    constraints: dict[str, dict] = {}
    for text, labels in zip(instructions, triplet_labels):
        if labels is not None:
            constraints.setdefault(text, labels[0])
    return torch.tensor(
        [
            [
                labels is not None and text in constraints and satisfies(labels[2], constraints[text])
                for text in unique
            ]
            for labels in triplet_labels
        ],
        dtype=torch.bool,
    ).reshape(len(triplet_labels), len(unique))  # (N, U)


class TripletCollator:
    """Turns a list of InF-IR rows into a :class:`TripletBatch` (see module docstring for the swap sampling).

    `text`: the encoder's :class:`~infembed.text.TextSpec` (templates, lengths, tokenizer; it pickles cheaply into
    workers and loads its tokenizer there; None for a collator that only samples, see :meth:`sample`).
    `num_swap_negatives`: K, an int >= 0 or "auto" (resolved per batch from its number of triplets). `fusion`:
    the encoder's, "concat" or "attention" (what the pairs become, see the module docstring).
    `mask_false_swaps`: drop swap candidates the triplet's passage satisfies (rows with labels only);
    `false_swap_rate`: share of swap slots replaced by decoys (concat only). Stateless: the swap sampling is
    seeded per batch (see the module docstring).
    """

    def __init__(
        self,
        text: TextSpec | None,
        num_swap_negatives: int | str = 0,
        seed: int = 0,
        fusion: str = "concat",
        mask_false_swaps: bool = True,
        false_swap_rate: float = 0.0,
    ):
        resolve_num_swap_negatives(
            num_swap_negatives, triplets_per_device=TRIPLETS_PER_ROW
        )  # validates early
        if fusion not in FUSIONS:
            raise ValueError(f"fusion={fusion!r}: expected one of {list(FUSIONS)}")
        check_false_swap_rate(false_swap_rate, fusion)
        self.text = text
        self.num_swap_negatives = num_swap_negatives
        self.seed = seed
        self.fusion = fusion
        self.mask_false_swaps = mask_false_swaps
        self.false_swap_rate = false_swap_rate

    def generator(self, rows: list[dict]) -> torch.Generator:
        """Seeded from (seed, the first row's stream position (pass, shard, index)): unique per batch of a stream;
        rows built by hand (no position) draw from `seed` alone."""
        return torch.Generator().manual_seed(derive_seed(self.seed, *rows[0].get(POSITION, ())))

    def __call__(self, rows: list[dict[str, str]]) -> TripletBatch:
        triplets = [t for row in rows for t in expand_row(row)]  # 3 per row, adjacent
        instructions, queries, passages = (list(column) for column in zip(*triplets))
        passage_texts = [self.text.format_passage(p) for p in passages]
        batch = TripletBatch(
            None,
            self.text.tokenize(passage_texts, "passage"),
            [row.get(SOURCE, "<row built by hand>") for row in rows],
        )
        k = resolve_num_swap_negatives(self.num_swap_negatives, len(triplets))
        if self.fusion == "attention":
            batch.queries = self.text.tokenize_pairs(queries, [""] * len(queries))
            batch.instructions = self.text.tokenize(instructions, "pair")
            if k > 0:
                batch.swap_index, batch.swap_mask = self.instruction_swaps(
                    instructions, k, self.generator(rows), rows
                )
            return batch
        batch.pairs = self.text.tokenize_pairs(queries, instructions)
        if k > 0:
            batch.swap_pairs, batch.swap_index, batch.swap_mask = self.swaps(
                instructions, queries, k, self.generator(rows), rows
            )
        return batch

    def sample(
        self, instructions: list[str], k: int, generator: torch.Generator, rows: list[dict] = ()
    ) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """(swap instruction texts: the batch's distinct ones in first-seen order, then any decoys; chosen ids
        (N, K) into them; mask (N, K)), as the module docstring says. `rows` (the batch's rows) give the labels;
        without them nothing is masked or injected."""
        unique = list(dict.fromkeys(instructions))  # distinct instruction texts, first-seen order
        ids = {text: u for u, text in enumerate(unique)}
        instruction_ids = torch.tensor([ids[text] for text in instructions])  # (N,)
        designed = torch.full_like(instruction_ids, -1)  # (N,)
        first = torch.arange(0, len(instructions), TRIPLETS_PER_ROW)  # the (I+, Q+) triplet of each row
        designed[first] = instruction_ids[first + 1]  # its row's I-
        designed[designed == instruction_ids] = -1  # I- equal to I+ is no negative
        excluded = satisfied_matrix(rows, instructions, unique) if self.mask_false_swaps and rows else None
        chosen, mask = sample_swaps(
            instruction_ids, designed, len(unique), k, generator, excluded
        )  # (N, K) x2
        if self.false_swap_rate > 0 and rows:
            unique, chosen = self.inject_decoys(rows, unique, chosen, mask, generator)
        return unique, chosen, mask

    def inject_decoys(
        self, rows: list[dict], unique: list[str], chosen: torch.Tensor, mask: torch.Tensor, generator
    ) -> tuple[list[str], torch.Tensor]:
        """Replace each valid slot with probability false_swap_rate by the next of its passage's decoys (cycling);
        a triplet without decoys keeps its slots. Returns (unique + the decoy texts used, chosen (N, K))."""
        hits = (torch.rand(chosen.shape, generator=generator) < self.false_swap_rate) & mask  # (N, K)
        decoys = [d for row in rows for d in expand_decoys(row)]  # per triplet
        ids, chosen = {text: u for u, text in enumerate(unique)}, chosen.clone()
        for i in hits.any(1).nonzero()[:, 0].tolist():
            if not decoys[i]:
                continue
            for n, slot in enumerate(hits[i].nonzero()[:, 0].tolist()):
                text = decoys[i][n % len(decoys[i])]
                chosen[i, slot] = ids.setdefault(text, len(ids))
        return list(ids), chosen

    def instruction_swaps(
        self, instructions: list[str], k: int, generator: torch.Generator, rows: list[dict] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention fusion: swap_index (N, K) into the batch's instructions (the first triplet holding each sampled
        text), swap_mask (N, K); the same draws as :meth:`swaps`."""
        unique, chosen, mask = self.sample(instructions, k, generator, rows)
        first = {}
        for j, text in enumerate(instructions):
            first.setdefault(text, j)
        holder = torch.tensor([first[text] for text in unique])  # (U,) triplet index of each distinct text
        return torch.where(mask, holder[chosen], 0), mask  # (N, K), (N, K)

    def swaps(
        self,
        instructions: list[str],
        queries: list[str],
        k: int,
        generator: torch.Generator,
        rows: list[dict] = (),
    ) -> tuple[Tokens, torch.Tensor, torch.Tensor]:
        """Concat fusion: swap_pairs, swap_index (N, K), swap_mask (N, K) for this batch (see module docstring)."""
        unique, chosen, mask = self.sample(instructions, k, generator, rows)
        pairs = list(zip(queries, instructions))
        pair_index = {pair: i for i, pair in reversed(list(enumerate(pairs)))}  # first occurrence wins
        new_pairs: list[tuple[str, str]] = []
        targets = []
        for i, u in zip(mask.nonzero()[:, 0].tolist(), chosen[mask].tolist()):  # valid slots, row-major
            pair = (queries[i], unique[u])
            if pair not in pair_index:
                pair_index[pair] = len(pairs) + len(new_pairs)
                new_pairs.append(pair)
            targets.append(pair_index[pair])
        swap_index = torch.zeros_like(chosen)  # (N, K), padding slots point at 0 and are masked
        swap_index[mask] = torch.tensor(targets, dtype=torch.long)
        swap_queries, swap_instructions = [q for q, _ in new_pairs], [i for _, i in new_pairs]
        return self.text.tokenize_pairs(swap_queries, swap_instructions), swap_index, mask
