"""Deterministic synthetic instruction-following data (the embedded default dataset).

Two generator versions (`generator`, recorded in manifest.json) render the same design in different worlds:
    v2  (default) 100 topics × 8 aspects, 107-153-word passages showing each attribute in several sentences
        (infembed.data.synthetic_text); every instruction names the query's topic in a context sentence, so
        another row's instruction rarely describes a passage (0.5 % of swap slots at 8 rows, K = 3)
    v1  the world described below (30-word passages; instructions name no topic: 41.5 % false swap slots)
Every row carries a `labels` column (data.schema): the constraints of its queries and instructions, the
attributes of its passages, and for training rows each passage's decoys (instructions it satisfies, for
data.false_swap_rate). Below, the v1 world; v2 differs only where said above.

World: topics × aspects × passage attributes. A passage is about one topic and one aspect and shows one value
of each of four binary attributes in its wording:
    audience  children ("Wow, super fun fact!")           | experts ("Technical note:")
    period    past ("Before railways existed,")           | present ("Since the smartphone arrived,")
    stance    approving ("What a delight!")               | critical ("Critics call it a failure.")
    format    numbered points ("1) ... 2) ...")           | running prose ("..., and ...")
A query asks about a topic and an aspect; an instruction constrains ONE attribute and names it with other
words than passages use ("aimed at young readers" vs "Wow, super fun fact!"): lexical overlap cannot do it.
Present tense goes with the present period, past tense with the past.
A training row (InF-IR schema):
    P+   topic t, aspect a, attributes x;   Q+ asks about (t, a);   I+ asks for x[A] = v
    hard_negative_document_1: P+ with x[A] flipped (same words otherwise): satisfies (I-, Q+); I-: x[A] = ¬v
    hard_negative_document_2: topic t, another aspect a', attributes x: satisfies (I+, Q-); Q-: about (t, a')
Training rows use training topics; heldout.jsonl and the FollowIR-form set use held-out topics.
FollowIR form: an original instruction (x[A] = v) and a changed one (x[A] = ¬v); candidate pool of same
topic/aspect passages with both values, the same topic's other aspects and other topics; the changed docs
(relevant under the original only) are the ones p-MRR follows.

Difficulty (`difficulty`, recorded in manifest.json):
    easy  the above: one attribute per instruction, the same wordings in training and evaluation,
          22-passage pools.
    hard  (default) the same training rows; held-out rows and FollowIR queries are harder (knobs in HARD):
          their instructions constrain two attributes A, B at once, with constraint phrases never used in
          training ("pitched at kids"), each possibly negated ("not pitched at kids" = experts), in sentence
          templates never used in training. FollowIR: og asks x[A] = a and x[B] = b, changed asks x[A] = a
          and x[B] = ¬b (a negated B loses its "not", a plain one takes the parallel phrase); the pool (28)
          adds partial matches judged non-relevant: only A or neither satisfied, both on another aspect.
          Held out (v1), untrained MiniLM -> default run (x100): nDCG@10 47.7 -> 65.2, p-MRR 2.9 -> 25.0
          (easy: 70.0 -> 96.6, 9.5 -> 56.0).

    python -m infembed.data.synthetic --out DIR [--train-rows 4000] [--eval-queries 150] [--seed 0]
        [--difficulty hard] [--generator v2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infembed.data import synthetic_text as text
from infembed.data.schema import PASSAGE_COLUMNS
from infembed.errors import check_choice

VERSION = 4  # 2: the difficulty parameter; 3: the generator parameter (v1 = version 2 + labels) and labels; 4: query clusters
DIFFICULTIES = ("easy", "hard")
HELDOUT_TOPIC_FRACTION = 0.25

TOPICS = (
    "beekeeping",
    "cheese making",
    "glass blowing",
    "rock climbing",
    "sailing",
    "pottery",
    "coffee farming",
    "wind power",
    "bridge building",
    "scuba diving",
    "falconry",
    "wine making",
    "paper making",
    "blacksmithing",
    "chess",
    "archery",
    "beer brewing",
    "bread baking",
    "tea growing",
    "rice farming",
    "horse riding",
    "surfing",
    "woodworking",
    "knitting",
    "photography",
    "gardening",
    "fishing",
    "mountain biking",
    "skiing",
    "weaving",
    "soap making",
    "candle making",
    "origami",
    "calligraphy",
    "kayaking",
    "stargazing",
    "birdwatching",
    "cave exploring",
    "hot air ballooning",
    "perfume making",
)

# aspect -> (queries, lead clauses naming the topic, follow clauses); {is}/{are}/{has}/{can} carry the tense
ASPECTS = {
    "cost": (
        (
            "how much does {topic} cost",
            "is {topic} expensive",
            "what are the expenses involved in {topic}",
            "{topic} price and budget",
        ),
        (
            "{topic} {is} costly to start",
            "the price of {topic} {is} high for most families",
            "{topic} {is} an expensive pursuit",
        ),
        (
            "fees, supplies and repairs {are} a steady drain on savings",
            "insurance and upkeep {are} extra expenses",
            "a beginner's kit alone {is} worth months of pocket money",
        ),
    ),
    "safety": (
        (
            "is {topic} dangerous",
            "what injuries happen in {topic}",
            "safety risks of {topic}",
            "how risky is {topic}",
        ),
        ("{topic} {has} real dangers", "injuries {are} common in {topic}", "{topic} {is} risky without care"),
        (
            "cuts, falls and burns {are} the usual accidents",
            "protective gear {is} the best defence against harm",
            "one careless moment {can} send someone to hospital",
        ),
    ),
    "environment": (
        (
            "environmental impact of {topic}",
            "how does {topic} affect nature",
            "is {topic} bad for the environment",
            "{topic} pollution and wildlife",
        ),
        (
            "{topic} {has} a clear effect on nature",
            "the ecological footprint of {topic} {is} large",
            "{topic} {is} tied to local wildlife and land",
        ),
        (
            "water use and waste {are} the main pollution concerns",
            "nearby forests and rivers {are} affected",
            "energy use {is} a big part of its carbon cost",
        ),
    ),
    "equipment": (
        (
            "what equipment is needed for {topic}",
            "tools used in {topic}",
            "gear required for {topic}",
            "which instruments does {topic} use",
        ),
        (
            "{topic} {is} impossible without the right gear",
            "the tools of {topic} {are} specialised",
            "{topic} {has} its own set of equipment",
        ),
        (
            "sturdy instruments and protective clothing {are} essential",
            "a well-stocked workshop {is} the heart of it",
            "every kit {has} a few delicate, hand-made parts",
        ),
    ),
    "origins": (
        (
            "origins of {topic}",
            "how did {topic} begin",
            "who invented {topic}",
            "where does {topic} come from",
        ),
        (
            "the roots of {topic} {are} ancient",
            "{topic} {has} its beginnings in small villages",
            "the birth of {topic} {is} a tale of trade routes",
        ),
        (
            "merchants {are} the ones who carried it to new lands",
            "early traditions {are} handed down through families",
            "the first guilds {are} founded to guard its secrets",
        ),
    ),
    "learning": (
        (
            "how to learn {topic}",
            "how long does it take to master {topic}",
            "skills needed for {topic}",
            "is {topic} hard to learn",
        ),
        (
            "learning {topic} {is} a slow process",
            "{topic} {is} a skill that takes years to master",
            "becoming good at {topic} {is} hard work",
        ),
        (
            "beginners {are} expected to practise daily with a mentor",
            "patience {is} the most important quality for a student",
            "clubs and courses {are} the usual way in",
        ),
    ),
}

TENSES = (
    {"is": "was", "are": "were", "has": "had", "can": "could"},  # period value 0: past
    {"is": "is", "are": "are", "has": "has", "can": "can"},
)  # period value 1: present

# attribute -> (passage markers for value 0, for value 1, instruction pairs (value 0, value 1), minimal edits)
ATTRIBUTES = {
    "audience": (
        ("Guess what?", "Wow, super fun fact!", "Yay, story time!", "Ready? Here we go!"),
        (
            "Technical note:",
            "Engineering brief:",
            "Per the peer-reviewed literature:",
            "Quantitative summary:",
        ),
        (
            (
                "The passage should be aimed at young readers.",
                "The passage should target professionals in the field.",
            ),
            ("I want something written for a child.", "I want something written at a graduate level."),
            (
                "Only show material suitable for an elementary school class.",
                "Only show material suitable for university researchers.",
            ),
            (
                "Find text that a seven-year-old would enjoy.",
                "Find text that a trained specialist would consult.",
            ),
        ),
    ),
    "period": (
        (
            "When candles lit every home,",
            "In the age of steam engines,",
            "In the days of horse-drawn carriages,",
            "Before railways existed,",
        ),
        (
            "Since the smartphone arrived,",
            "In the era of electric cars,",
            "Now that everyone streams video,",
            "With satellites overhead,",
        ),
        (
            ("Focus on how things used to be long ago.", "Focus on how things stand at the present time."),
            (
                "It must describe an earlier historical period.",
                "It must describe the current state of affairs.",
            ),
            (
                "I only care about the situation in past centuries.",
                "I only care about the situation nowadays.",
            ),
            ("Prefer accounts of bygone times.", "Prefer accounts of the contemporary situation."),
        ),
    ),
    "stance": (
        ("What a delight!", "People simply love it.", "Truly a great success.", "It is a wonderful thing."),
        (
            "Critics call it a failure.",
            "Sadly, it is a real problem.",
            "Many find this worrying.",
            "Frankly, it is a mess.",
        ),
        (
            ("The text should take a favourable view.", "The text should take a disapproving view."),
            ("I want an optimistic, approving tone.", "I want a skeptical, negative tone."),
            ("Pick writing that praises it.", "Pick writing that complains about it."),
            ("Choose an enthusiastic account.", "Choose a pessimistic account."),
        ),
    ),
    "format": (
        ("1) {a}. 2) {b}.", "First: {a}. Second: {b}.", "Key points: - {a}; - {b}."),
        ("{a}, and {b}.", "{a}; what is more, {b}.", "{a}, while {b}."),
        (
            ("Present the answer as enumerated items.", "Present the answer as a flowing paragraph."),
            ("I want a numbered breakdown.", "I want a continuous narrative."),
            ("Give me an itemised rundown.", "Give me connected sentences in one block."),
            ("Structure it as a checklist.", "Structure it as an essay-like passage."),
        ),
    ),
}
ATTRIBUTE_NAMES = tuple(ATTRIBUTES)


def _passage(rng_choices: dict, topic: str, aspect: str, values: dict[str, int]) -> str:
    """Render a passage from fixed template choices (so two passages can differ in exactly one attribute)."""
    _, leads, follows = ASPECTS[aspect]
    tense = TENSES[values["period"]]
    period = ATTRIBUTES["period"][values["period"]][rng_choices["period"] % 4]
    a = f"{period} " + leads[rng_choices["lead"] % len(leads)].format(topic=topic, **tense)
    b = follows[rng_choices["follow"] % len(follows)].format(**tense)
    body = ATTRIBUTES["format"][values["format"]][rng_choices["format"] % 3].format(a=a, b=b)
    audience = ATTRIBUTES["audience"][values["audience"]][rng_choices["audience"] % 4]
    stance = ATTRIBUTES["stance"][values["stance"]][rng_choices["stance"] % 4]
    return f"{audience} {body} {stance}"


def _choices(rng: random.Random) -> dict[str, int]:
    return {key: rng.randrange(12) for key in ("lead", "follow", "format", "audience", "period", "stance")}


def _values(rng: random.Random) -> dict[str, int]:
    return {name: rng.randrange(2) for name in ATTRIBUTE_NAMES}


def _query(rng: random.Random, topic: str, aspect: str) -> str:
    return rng.choice(ASPECTS[aspect][0]).format(topic=topic)


def _instructions(rng: random.Random, attribute: str) -> tuple[str, str]:
    """A (value 0, value 1) instruction pair with parallel wording."""
    return rng.choice(ATTRIBUTES[attribute][2])


@dataclass(frozen=True)
class World:
    """What a generator version renders: topics, aspects, passages, queries and instruction wordings.

    instructions(rng, topic, attribute) -> (value-0 text, value-1 text) of a training instruction;
    context(rng, topic) -> the sentence a held-out instruction starts with ("" in v1);
    names_topic: whether an instruction constrains the topic (its labels then hold "topic").
    """

    name: str
    topics: tuple[str, ...]
    aspects: tuple[str, ...]
    choices: Callable[[random.Random], dict]
    passage: Callable[[dict, str, str, dict[str, int]], str]
    query: Callable[[random.Random, str, str], str]
    instructions: Callable[[random.Random, str, str], tuple[str, str]]
    context: Callable[[random.Random, str], str]
    names_topic: bool


WORLDS = {
    "v1": World(
        "v1",
        TOPICS,
        tuple(sorted(ASPECTS)),
        _choices,
        _passage,
        _query,
        lambda rng, topic, attribute: _instructions(rng, attribute),
        lambda rng, topic: "",
        names_topic=False,
    ),
    "v2": World(
        "v2",
        text.TOPICS,
        tuple(sorted(text.ASPECTS)),
        text.choices,
        text.passage,
        text.query,
        text.instructions,
        text.heldout_context,
        names_topic=True,
    ),
}
GENERATORS = tuple(WORLDS)


def _constraint_labels(world: World, topic: str, constraints: dict[str, int]) -> dict:
    """An instruction's labels: the attribute values it asks for, and its topic when it names one."""
    return {"topic": topic, **constraints} if world.names_topic else dict(constraints)


def _decoys(world: World, topic: str, values: dict[str, int], skip: str) -> list[str]:
    """Training instructions (one per attribute but `skip`) that a passage with `values` satisfies; fixed per
    (topic, attribute, value) so they draw nothing from the row's generator."""
    return [
        world.instructions(random.Random(f"decoy {topic} {name} {values[name]}"), topic, name)[values[name]]
        for name in ATTRIBUTE_NAMES
        if name != skip
    ]


def row_labels(
    world: World,
    topic: str,
    aspects: tuple[str, str],
    constraints: tuple[dict[str, int], dict[str, int]],
    passages: tuple[dict[str, int], dict[str, int], dict[str, int]],
) -> dict:
    """The `labels` column: constraints of both queries and instructions, attributes of the three passages.

    aspects: (Q+'s, Q-'s); constraints: (I+'s, I-'s); passages: values of (P+, hard negative 1, hard negative 2),
    about (topic, aspects[0]), (topic, aspects[0]), (topic, aspects[1]).
    """
    document_aspects = (aspects[0], aspects[0], aspects[1])
    return {
        "query_positive": {"topic": topic, "aspect": aspects[0]},
        "query_negative": {"topic": topic, "aspect": aspects[1]},
        "instruction_positive": _constraint_labels(world, topic, constraints[0]),
        "instruction_negative": _constraint_labels(world, topic, constraints[1]),
        **{
            column: {"topic": topic, "aspect": aspect, **values}
            for column, aspect, values in zip(PASSAGE_COLUMNS, document_aspects, passages)
        },
    }


def make_row(rng: random.Random, topic: str, world: World = WORLDS["v1"]) -> dict:
    """One InF-IR row: P+, its attribute flip (hard negative 1) and its aspect change (hard negative 2), with
    labels and each passage's decoys (see :func:`row_labels`, :func:`_decoys`)."""
    aspect, other_aspect = rng.sample(world.aspects, 2)
    attribute = rng.choice(ATTRIBUTE_NAMES)
    values, choices = _values(rng), world.choices(rng)
    flipped = dict(values, **{attribute: 1 - values[attribute]})
    pair = world.instructions(rng, topic, attribute)
    labels = row_labels(
        world,
        topic,
        (aspect, other_aspect),
        ({attribute: values[attribute]}, {attribute: 1 - values[attribute]}),
        (values, flipped, values),
    )
    labels["decoys"] = {
        "document_positive": _decoys(world, topic, values, attribute),
        "hard_negative_document_1": _decoys(world, topic, flipped, attribute),
        "hard_negative_document_2": _decoys(world, topic, values, attribute),
    }
    return {
        "query_positive": world.query(rng, topic, aspect),
        "query_negative": world.query(rng, topic, other_aspect),
        "instruction_positive": pair[values[attribute]],
        "instruction_negative": pair[1 - values[attribute]],
        "document_positive": world.passage(choices, topic, aspect, values),
        "hard_negative_document_1": world.passage(choices, topic, aspect, flipped),
        "hard_negative_document_2": world.passage(choices, topic, other_aspect, values),
        "labels": labels,
    }


def split_topics(rng: random.Random, world: World = WORLDS["v1"]) -> tuple[list[str], list[str]]:
    """(training topics, held-out topics), a seeded partition."""
    topics = sorted(world.topics)
    rng.shuffle(topics)
    cut = round(len(topics) * HELDOUT_TOPIC_FRACTION)
    return sorted(topics[cut:]), sorted(topics[:cut])


class _Corpus:
    """Passages deduplicated by text, ids in order of first appearance."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def add(self, text: str) -> str:
        return self.ids.setdefault(text, f"doc{len(self.ids):05d}")


def make_followir_query(
    rng: random.Random, topic: str, topics: list[str], corpus: _Corpus, world: World = WORLDS["v1"]
) -> dict:
    """One FollowIR-form query: instructions (og: A = v, changed: A = ¬v), a candidate pool and relevance.

    Pool (22): 4 same topic/aspect passages with A = v and their 4 flips (A = ¬v), 8 of the same topic's other
    aspects, 6 of other held-out topics. Relevant under og: topic, aspect and A = v; under changed: A = ¬v.
    """
    aspect = rng.choice(world.aspects)
    attribute = rng.choice(ATTRIBUTE_NAMES)
    value = rng.randrange(2)
    pair = world.instructions(rng, topic, attribute)
    og, changed = {}, {}
    for _ in range(4):
        values, choices = dict(_values(rng), **{attribute: value}), world.choices(rng)
        og[corpus.add(world.passage(choices, topic, aspect, values))] = 1
        changed[corpus.add(world.passage(choices, topic, aspect, dict(values, **{attribute: 1 - value})))] = 1
    others = [a for a in world.aspects if a != aspect]
    distractors = [
        corpus.add(world.passage(world.choices(rng), topic, rng.choice(others), _values(rng)))
        for _ in range(8)
    ]
    other_topics = [t for t in topics if t != topic]
    distractors += [
        corpus.add(
            world.passage(
                world.choices(rng), rng.choice(other_topics), rng.choice(world.aspects), _values(rng)
            )
        )
        for _ in range(6)
    ]
    pool = list(dict.fromkeys([*og, *changed, *distractors]))
    rng.shuffle(pool)
    return {
        "text": world.query(rng, topic, aspect),
        "instruction_og": pair[value],
        "instruction_changed": pair[1 - value],
        "cluster": attribute,  # queries about one attribute move together: the report resamples them as a unit
        "pool": pool,
        "og": {d: og.get(d, 0) for d in pool},
        "changed": {d: changed.get(d, 0) for d in pool},
    }


# -- hard difficulty -----------------------------------------------------------------------------------------

# attribute -> (constraint phrases for value 0, for value 1). Held-out rows and FollowIR queries only: no
# phrase occurs in a training instruction (training rows are the easy ones), and, like those, none shares a
# word of more than four letters with any passage.
PHRASES = {
    "audience": (
        ("pitched at kids", "intended for a primary-school audience", "fit for youngsters"),
        ("pitched at domain experts", "intended for seasoned practitioners", "fit for scholars"),
    ),
    "period": (
        ("describing a vanished past", "looking back at yesteryear", "about history"),
        ("describing today's world", "covering the modern day", "about the here and now"),
    ),
    "stance": (
        ("upbeat about the subject", "full of admiration", "cheerful in outlook"),
        ("harsh about the subject", "full of disappointment", "gloomy in outlook"),
    ),
    "format": (
        ("formatted as a list", "broken into separate bullet entries", "split into items"),
        ("formatted as unbroken prose", "written as one seamless stretch of text", "kept as running text"),
    ),
}
NEGATION = "not "
# number of constraints -> sentence templates (none is used in training)
TEMPLATES = {
    1: ("Looking for writing {0}.", "Retrieve a document {0}."),
    2: ("Looking for writing {0} as well as {1}.", "Retrieve a document {0}, and also {1}."),
}


@dataclass(frozen=True)
class Hard:
    """The knobs of the hard held-out set (pool counts are per FollowIR query)."""

    two_constraints: float = (
        1.0  # share of held-out rows and queries whose instruction constrains two attributes
    )
    negation: float = 0.3  # chance that a constraint is worded as a negation
    relevant: int = (
        4  # same topic/aspect, every constraint (each has a B-flip and, with two, an A-flip in the pool)
    )
    both_flipped: int = 2  # with two constraints: same topic/aspect, neither constraint
    other_aspect: int = 8  # same topic, other aspect, every constraint
    other_topic: int = 6  # other held-out topics, any attributes


HARD = Hard()


@dataclass(frozen=True)
class Constraint:
    """x[attribute] = value, worded with phrase `index` of value ^ negated, after "not " when negated."""

    attribute: str
    value: int
    negated: bool
    index: int

    def render(self) -> str:
        phrases = PHRASES[self.attribute][self.value ^ self.negated]
        return NEGATION * self.negated + phrases[self.index % len(phrases)]

    def flip(self) -> Constraint:
        """x[attribute] = ¬value: a negation is dropped ("not pitched at kids" -> "pitched at kids"), a plain
        phrase becomes its parallel phrase ("pitched at kids" -> "pitched at domain experts")."""
        return Constraint(self.attribute, 1 - self.value, False, self.index)


def _constraints(rng: random.Random, target: dict[str, int]) -> list[Constraint]:
    return [
        Constraint(name, value, rng.random() < HARD.negation, rng.randrange(12))
        for name, value in target.items()
    ]


def _hard_instructions(
    rng: random.Random, positive: list[Constraint], negative: list[Constraint], context: str = ""
) -> tuple[str, str]:
    """Two instructions with the same context and sentence template: (positive constraints, negative ones)."""
    template = rng.choice(TEMPLATES[len(positive)])
    return tuple(
        f"{context} {template.format(*(c.render() for c in cs))}".lstrip() for cs in (positive, negative)
    )


def _attributes(rng: random.Random) -> list[str]:
    """The constrained attributes of one held-out row or query; the last one is the one that changes."""
    return rng.sample(ATTRIBUTE_NAMES, 2 if rng.random() < HARD.two_constraints else 1)


def make_hard_row(rng: random.Random, topic: str, world: World = WORLDS["v1"]) -> dict:
    """One held-out InF-IR row: I+ constrains one or two attributes; I- and hard negative 1 flip the last."""
    aspect, other_aspect = rng.sample(world.aspects, 2)
    attributes, values, choices = _attributes(rng), _values(rng), world.choices(rng)
    constraints = _constraints(rng, {name: values[name] for name in attributes})
    positive, negative = _hard_instructions(
        rng, constraints, [*constraints[:-1], constraints[-1].flip()], world.context(rng, topic)
    )
    changed = attributes[-1]
    flipped = dict(values, **{changed: 1 - values[changed]})
    wanted = {name: values[name] for name in attributes}
    labels = row_labels(
        world,
        topic,
        (aspect, other_aspect),
        (wanted, dict(wanted, **{changed: flipped[changed]})),
        (values, flipped, values),
    )
    return {
        "query_positive": world.query(rng, topic, aspect),
        "query_negative": world.query(rng, topic, other_aspect),
        "instruction_positive": positive,
        "instruction_negative": negative,
        "document_positive": world.passage(choices, topic, aspect, values),
        "hard_negative_document_1": world.passage(choices, topic, aspect, flipped),
        "hard_negative_document_2": world.passage(choices, topic, other_aspect, values),
        "labels": labels,
    }


def make_hard_followir_query(
    rng: random.Random, topic: str, topics: list[str], corpus: _Corpus, world: World = WORLDS["v1"]
) -> dict:
    """One hard FollowIR-form query: og asks x[A] = a (with two constraints) and x[B] = b; changed flips b.

    Pool (two constraints: 4 + 4 + 4 + 2 + 8 + 6 = 28; one: 4 + 4 + 8 + 6 = 22), same topic/aspect unless
    said:
    R = passages with (a, b), relevant under og; their B-flips (a, ¬b), relevant under changed; their A-flips
    (¬a, b) and (¬a, ¬b), never relevant; same topic, other aspects, with (a, b); other held-out topics, any
    attributes.
    """
    aspect = rng.choice(world.aspects)
    attributes = _attributes(rng)
    target = {name: rng.randrange(2) for name in attributes}
    constraints = _constraints(rng, target)
    og_text, changed_text = _hard_instructions(
        rng, constraints, [*constraints[:-1], constraints[-1].flip()], world.context(rng, topic)
    )
    *stable, changing = attributes
    og, changed, partial = {}, {}, []
    for number in range(HARD.relevant):
        values, choices = dict(_values(rng), **target), world.choices(rng)
        og[corpus.add(world.passage(choices, topic, aspect, values))] = 1
        changed[
            corpus.add(
                world.passage(choices, topic, aspect, dict(values, **{changing: 1 - target[changing]}))
            )
        ] = 1
        for name in stable:
            partial.append(
                corpus.add(world.passage(choices, topic, aspect, dict(values, **{name: 1 - target[name]})))
            )
            if number < HARD.both_flipped:
                neither = {name: 1 - target[name], changing: 1 - target[changing]}
                partial.append(corpus.add(world.passage(choices, topic, aspect, dict(values, **neither))))
    others = [a for a in world.aspects if a != aspect]
    distractors = [
        corpus.add(world.passage(world.choices(rng), topic, rng.choice(others), dict(_values(rng), **target)))
        for _ in range(HARD.other_aspect)
    ]
    other_topics = [t for t in topics if t != topic]
    distractors += [
        corpus.add(
            world.passage(
                world.choices(rng), rng.choice(other_topics), rng.choice(world.aspects), _values(rng)
            )
        )
        for _ in range(HARD.other_topic)
    ]
    pool = list(dict.fromkeys([*og, *changed, *partial, *distractors]))
    rng.shuffle(pool)
    return {
        "text": world.query(rng, topic, aspect),
        "instruction_og": og_text,
        "instruction_changed": changed_text,
        "cluster": "+".join(attributes),  # the attribute pair (stable+changing): 12 clusters for the report
        "pool": pool,
        "og": {d: og.get(d, 0) for d in pool},
        "changed": {d: changed.get(d, 0) for d in pool},
    }


def _write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _write_qrels(path: Path, queries: list[dict], key: str) -> None:
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q['_id']}\t{doc}\t{rel}" for q in queries for doc, rel in q[key].items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def params(
    train_rows: int,
    eval_queries: int,
    seed: int,
    heldout_rows: int | None = None,
    difficulty: str = "hard",
    generator: str = "v2",
) -> dict:
    """The generator parameters recorded in manifest.json (heldout_rows defaults to 2 × eval_queries)."""
    check_choice(difficulty, DIFFICULTIES, "data.synthetic.difficulty")
    check_choice(generator, GENERATORS, "data.synthetic.generator")
    heldout = 2 * eval_queries if heldout_rows is None else heldout_rows
    return {
        "version": VERSION,
        "train_rows": train_rows,
        "eval_queries": eval_queries,
        "heldout_rows": heldout,
        "seed": seed,
        "difficulty": difficulty,
        "generator": generator,
    }


def _makers(difficulty: str):
    """(training row, held-out row, FollowIR query) makers of one difficulty."""
    if difficulty == "easy":
        return make_row, make_row, make_followir_query
    return make_row, make_hard_row, make_hard_followir_query


def write_dataset(out_dir: Path, config: dict) -> dict[str, str]:
    """Write every file of the synthetic dataset into an existing directory."""
    rng, world = random.Random(config["seed"]), WORLDS[config["generator"]]
    train_topics, heldout_topics = split_topics(random.Random(f"topics-{config['seed']}"), world)
    train_row, heldout_row, followir_query = _makers(config["difficulty"])
    train = [train_row(rng, rng.choice(train_topics), world) for _ in range(config["train_rows"])]
    heldout = [heldout_row(rng, rng.choice(heldout_topics), world) for _ in range(config["heldout_rows"])]
    corpus = _Corpus()
    queries = [
        followir_query(rng, rng.choice(heldout_topics), heldout_topics, corpus, world)
        for _ in range(config["eval_queries"])
    ]
    for number, query in enumerate(queries):
        query["_id"] = f"q{number:04d}"
    paths = {
        "train": out_dir / "train.jsonl",
        "heldout": out_dir / "heldout.jsonl",
        "followir": out_dir / "followir",
    }
    _write_jsonl(paths["train"], train)
    _write_jsonl(paths["heldout"], heldout)
    (paths["followir"] / "qrels").mkdir(parents=True)
    _write_jsonl(paths["followir"] / "corpus.jsonl", [{"_id": i, "text": t} for t, i in corpus.ids.items()])
    _write_jsonl(
        paths["followir"] / "queries.jsonl",
        [
            {
                "_id": q["_id"],
                "text": q["text"],
                "instruction_og": q["instruction_og"],
                "instruction_changed": q["instruction_changed"],
                "cluster": q["cluster"],
            }
            for q in queries
        ],
    )
    _write_qrels(paths["followir"] / "qrels" / "og.tsv", queries, "og")
    _write_qrels(paths["followir"] / "qrels" / "changed.tsv", queries, "changed")
    _write_jsonl(
        paths["followir"] / "candidates.jsonl",
        [{"query-id": q["_id"], "corpus-ids": q["pool"]} for q in queries],
    )
    manifest = {
        "written_by": "infembed.data.synthetic",
        **config,
        "train_topics": train_topics,
        "heldout_topics": heldout_topics,
        "corpus_size": len(corpus.ids),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {name: str(path) for name, path in paths.items()}


def read_manifest(out_dir: str | os.PathLike) -> dict | None:
    path = Path(out_dir) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(out_dir: str | os.PathLike, config: dict) -> bool:
    """True when out_dir holds data generated with exactly these parameters (and this generator version)."""
    manifest = read_manifest(out_dir)
    return manifest is not None and all(manifest.get(key) == value for key, value in config.items())


def generate(
    out_dir: str | os.PathLike,
    train_rows: int = 4000,
    eval_queries: int = 150,
    seed: int = 0,
    heldout_rows: int | None = None,
    difficulty: str = "hard",
    generator: str = "v2",
) -> dict[str, str]:
    """Generate the dataset into out_dir atomically (temp dir + rename) and return its paths.

    Returns {"train", "heldout", "followir", "manifest"} → paths. Same arguments → identical bytes.
    """
    if train_rows < 1 or eval_queries < 1:
        raise ValueError(f"train_rows={train_rows}, eval_queries={eval_queries}: expected both >= 1")
    out = Path(out_dir)
    refuse_foreign_directory(out)
    config = params(train_rows, eval_queries, seed, heldout_rows, difficulty, generator)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write_dataset(staging, config)
        if out.exists():  # stale data: move it aside first so `out` is never half-written
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / out.name)
            shutil.rmtree(old)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "train": str(out / "train.jsonl"),
        "heldout": str(out / "heldout.jsonl"),
        "followir": str(out / "followir"),
        "manifest": str(out / "manifest.json"),
    }


def refuse_foreign_directory(out: Path) -> None:
    """Only a directory this generator wrote (it has manifest.json) may be replaced: never a user's folder."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise ValueError(
            f"{out}: refusing to write synthetic data here: it exists and was not written by the generator "
            "(no manifest.json); choose an empty or new directory"
        )


def ensure(
    out_dir: str | os.PathLike,
    train_rows: int = 4000,
    eval_queries: int = 150,
    seed: int = 0,
    heldout_rows: int | None = None,
    difficulty: str = "hard",
    generator: str = "v2",
) -> bool:
    """Generate into out_dir unless it already holds data with these parameters; True when it generated.

    A file lock beside out_dir serialises concurrent callers (parallel sweep jobs starting on fresh data)."""
    from filelock import FileLock

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.parent / f".{out.name}.lock")):
        config = (train_rows, eval_queries, seed, heldout_rows, difficulty, generator)
        if is_current(out, params(*config)):
            return False
        generate(out, *config)
        return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--eval-queries", type=int, default=150)
    parser.add_argument("--heldout-rows", type=int, default=None, help="default: 2 × eval queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--difficulty", choices=DIFFICULTIES, default="hard")
    parser.add_argument(
        "--generator", choices=GENERATORS, default="v2", help="v1: the earlier, 30-word world"
    )
    args = parser.parse_args(argv)
    paths = generate(
        args.out,
        args.train_rows,
        args.eval_queries,
        args.seed,
        args.heldout_rows,
        args.difficulty,
        args.generator,
    )
    print(json.dumps(paths, indent=2))


if __name__ == "__main__":
    main()
