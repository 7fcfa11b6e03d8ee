"""The README's configuration-groups table and Layout describe exactly the tree: a new config option or module
that is not documented, or a documented one that is gone, fails here."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# groups every run composes once (paths, hydra) and have nothing to choose between
FIXED_GROUPS = {"paths", "hydra"}


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def documented_groups() -> dict[str, set[str]]:
    """``{group: {option, ...}}`` from the table rows ``| `group` | `option`, ... |``."""
    rows = re.findall(r"^\| `(\w+)` \| (.*) \|$", section("Configuration groups"), flags=re.M)
    return {group: set(re.findall(r"`(\w+)`", options)) for group, options in rows}


def test_config_groups_table_lists_every_group_and_option():
    groups = documented_groups()
    on_disk = {d.name for d in (ROOT / "conf").iterdir() if d.is_dir()} - FIXED_GROUPS
    assert set(groups) == on_disk
    for group in on_disk:
        options = {p.stem for p in (ROOT / "conf" / group).glob("*.yaml") if not p.stem.startswith("_")}
        if group == "loss":  # the row points at the loss table, which names each loss
            options_in_readme = set(re.findall(r"^\| `(\w+)` \|", section("The losses"), flags=re.M))
        else:
            options_in_readme = groups[group]
        assert options == options_in_readme, (
            f"{group}: conf/ has {sorted(options)}, the README {sorted(options_in_readme)}"
        )


def test_layout_lists_every_module_of_the_package():
    layout = section("Layout")
    documented = set(re.findall(r"^src/infembed/(\w+)(?:\.py|/)", layout, flags=re.M))
    package = ROOT / "src" / "infembed"
    on_disk = {p.stem for p in package.iterdir() if (p.suffix == ".py" and p.stem != "__init__")}
    on_disk |= {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert documented == on_disk
