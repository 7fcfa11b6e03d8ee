"""docs/method.md is the method in the repository, and every citation of it in code, config, tests and README names
a section that exists there (``docs/method.md, "Section"`` or ``..., "A" and "B"``)."""

import re

from helpers import ROOT

DOC = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
SECTIONS = set(re.findall(r"^## (.+)$", DOC, flags=re.M))
CITING = [
    p for d in ("src", "conf", "tests") for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".yaml", ".md")
]
CITING = [p for p in CITING if p.name != "test_method_doc.py"] + [ROOT / "README.md"]
CITATION = re.compile(r'docs/method\.md, ((?:"[^"]+")(?: and "[^"]+")*)')


def citations() -> list[tuple[str, str]]:
    found = []
    for path in CITING:
        for match in CITATION.finditer(path.read_text(encoding="utf-8")):
            found += [
                (str(path.relative_to(ROOT)), name) for name in re.findall(r'"([^"]+)"', match.group(1))
            ]
    return found


def test_every_cited_section_exists():
    cited = citations()
    assert len(cited) >= 24  # the losses, data, fusion, sampling and metric modules cite it
    missing = [(path, name) for path, name in cited if name not in SECTIONS]
    assert not missing, f"sections not in docs/method.md ({sorted(SECTIONS)}): {missing}"


def test_no_citation_points_outside_the_repository():
    stale = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in CITING
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"(?<!docs/)method\.md|method\.md §", line)
    ]
    assert not stale, stale


def test_the_doc_covers_the_method():
    expected = {
        "Data format",
        "The three conditionals",
        "The eleven losses",
        "Swap sampling",
        "Attention fusion",
    }
    assert expected | {"Metrics", "References"} <= SECTIONS
    assert all(
        f"| `{name}` |" in DOC for name in re.findall(r"^\| `(\w+)` \|", section_of("The eleven losses"))
    )
    assert len(re.findall(r"^\| `(uni|multi)_\w+` \|", DOC, flags=re.M)) == 11 and "p-MRR" in DOC


def section_of(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end]
