"""Imports run one way (architecture.md): no cycle inside the package, and the layers only look down.

run.py → pipeline → {preflight, callbacks, models → {encoder, losses → kernels}, build → {eval, data.schema,
data.sources}};  data, eval, report stand apart (eval reads InF-IR rows through data.schema, the one row validator); results (the schema pipeline and
report share), config, errors, text, hub_ids are leaves everyone may use.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "infembed"
# a module under the first key may never import a module under any of the listed prefixes
FORBIDDEN = {
    "infembed.kernels": (
        "infembed.losses",
        "infembed.models",
        "infembed.data",
        "infembed.eval",
        "infembed.pipeline",
    ),
    "infembed.losses": ("infembed.models", "infembed.data", "infembed.eval", "infembed.pipeline"),
    "infembed.models": ("infembed.pipeline", "infembed.report"),
    "infembed.data": (
        "infembed.models",
        "infembed.losses",
        "infembed.eval",
        "infembed.pipeline",
        "infembed.report",
        "infembed.build",
    ),
    "infembed.eval": (
        "infembed.pipeline",
        "infembed.report",
        "infembed.callbacks",
        "infembed.data.datamodule",
        "infembed.data.collator",
        "infembed.build",
    ),
    "infembed.report": ("infembed.pipeline", "infembed.models", "infembed.data", "infembed.build"),
    "infembed.build": (
        "infembed.pipeline",
        "infembed.models",
        "infembed.losses",
        "infembed.kernels",
        "infembed.report",
        "infembed.callbacks",
        "infembed.data.datamodule",
        "infembed.data.collator",
    ),
    "infembed.callbacks": (
        "infembed.pipeline",
        "infembed.models",
        "infembed.losses",
        "infembed.eval",
        "infembed.report",
        "infembed.build",
    ),
    "infembed.preflight": (
        "infembed.pipeline",
        "infembed.losses",
        "infembed.kernels",
        "infembed.data",
        "infembed.eval",
        "infembed.report",
        "infembed.callbacks",
        "infembed.build",
    ),
    "infembed.results": (
        "infembed.pipeline",
        "infembed.models",
        "infembed.losses",
        "infembed.kernels",
        "infembed.data",
        "infembed.eval",
        "infembed.report",
        "infembed.callbacks",
        "infembed.preflight",
        "infembed.build",
    ),
    "infembed.config": ("infembed.",),
    "infembed.errors": ("infembed.",),
    "infembed.text": ("infembed.models", "infembed.data", "infembed.eval", "infembed.pipeline"),
}


# the one exception: preflight reads the valid values of the enumerated keys from the modules that own them
# (constants, imported when a config is checked; nothing is built)
CHOICE_OWNERS = {
    "infembed.build.mining",
    "infembed.data.schema",
    "infembed.data.synthetic",
    "infembed.eval.benchmarks",
    "infembed.eval.retrieval",
    "infembed.eval.runner",
    "infembed.losses.registry",
    "infembed.models.encoder",
    "infembed.models.schedules",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Package modules imported anywhere in the file (function-level imports count too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m.split(".")[0] == PACKAGE}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in (SRC / PACKAGE).rglob("*.py")}
    return {
        name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()
    }


def test_no_import_cycle():
    edges = graph()
    # a package's __init__ re-exporting its own submodules is not a cycle between layers: drop parent→child edges
    edges = {a: {b for b in bs if not b.startswith(a + ".")} for a, bs in edges.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])


def test_layers_only_import_downwards():
    violations = [
        f"{a} imports {b}"
        for a, targets in graph().items()
        for layer, banned in FORBIDDEN.items()
        if a == layer or a.startswith(layer + ".")
        for b in targets
        if not (a == "infembed.preflight" and b in CHOICE_OWNERS)
        if any(
            b == ban.rstrip(".") or b.startswith(ban if ban.endswith(".") else ban + ".") or b == ban
            for ban in banned
        )
    ]
    assert not violations, violations
