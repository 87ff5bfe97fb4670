"""Copy benchmark reports from bench/results into the README, between named markers.

A block in the README::

    <!-- bench:compare-scifact -->
    ... replaced ...
    <!-- /bench:compare-scifact -->

takes the body of ``bench/results/compare-scifact.md`` (its headings moved below the README's
own: ``#`` becomes ``####``). A block whose report does not exist is left as it is and named
on stderr, so a partial ``make bench`` never wipes figures it did not measure.

Usage: python bench/update_readme.py [--results bench/results] [--readme README.md]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(
    r"(?P<open><!-- bench:(?P<name>[A-Za-z0-9_.-]+) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- /bench:(?P=name) -->)",
    re.DOTALL,
)


def update(readme: str, results: Path) -> tuple[str, list[str], list[str]]:
    """``readme`` with every block whose report exists replaced; the names replaced and the
    names left alone (no report)."""
    replaced: list[str] = []
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        report = results / f"{name}.md"
        if not report.is_file():
            missing.append(name)
            return match[0]
        replaced.append(name)
        body = re.sub(r"^#", "####", report.read_text("utf-8").strip(), flags=re.MULTILINE)
        return f"{match['open']}{body}\n{match['close']}"

    return BLOCK.sub(fill, readme), replaced, missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "bench/results")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args(argv)
    if not args.readme.is_file():
        parser.error(f"--readme {args.readme}: no such file")
    text = args.readme.read_text("utf-8")
    new, replaced, missing = update(text, args.results)
    if not replaced and not missing:
        print(f"{args.readme}: no <!-- bench:NAME --> blocks", file=sys.stderr)
        return 1
    if new != text:
        args.readme.write_text(new, "utf-8")
    print(f"{args.readme}: updated {', '.join(replaced) or 'nothing'}")
    for name in missing:
        print(f"kept {name}: no {args.results / (name + '.md')} yet", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
