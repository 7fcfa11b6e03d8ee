"""CLI: ``python -m infembed.report logs/train/multiruns/<time> [more dirs] [--out DIR] [--title TEXT]``."""
from __future__ import annotations

import argparse
import sys

from infembed.report.report import write_report
from infembed.report.runs import ReportInputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infembed.report", description=__doc__)
    parser.add_argument("dirs", nargs="+", help="Hydra multirun (or single job) directories")
    parser.add_argument("--out", default=None, help="where report.md and the plots go (default: the first dir)")
    parser.add_argument("--title", default=None, help="heading of report.md")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.dirs, args.out, args.title)
    except ReportInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(path.read_text())
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
