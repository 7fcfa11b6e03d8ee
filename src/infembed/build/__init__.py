"""``task=build_data``: instruction-following InF-IR rows from any BEIR-style retrieval collection.

    collection ─► (query, judged positive) pairs ─► mining: encoder top-k, judged positives excluded, false-negative
    filter ─► poisoning: I+, I-, Q- (an LLM, or swaps inside the collection) ─► validation: consistency checks and
    an LLM judge ─► rows (jsonl/parquet) with provenance columns + summary.json (drops per reason, acceptance rate)

Modules: :mod:`.cache` (responses on disk by content hash), :mod:`.backends` (transformers, OpenAI-compatible HTTP,
none), :mod:`.prompts` (versioned prompt templates, strict JSON answers), :mod:`.mining` (hard negatives and the
TopK-PercPos filter), :mod:`.builder` (the steps above and the outputs).
"""
