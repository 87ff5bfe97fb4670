"""Install size of a service-only install versus one with the ``eval`` extra.

The dependency closure of ``[project] dependencies`` and of those plus the ``eval`` extra,
taken from the installed distributions' metadata (what ``pip show`` reads), each
distribution's size the sum of the files in its RECORD (what ``pip show -f`` lists)::

    .venv/bin/python bench/install_size.py
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DISTS = {canonicalize_name(d.metadata["Name"]): d for d in md.distributions()}


def closure(requirements: Iterable[str]) -> set[str]:
    """Every installed distribution the requirements pull in, extras named in them included."""
    seen: set[str] = set()
    pending = [Requirement(r) for r in requirements]
    while pending:
        req = pending.pop()
        name = canonicalize_name(req.name)
        if name in seen or name not in DISTS:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        seen.add(name)
        for raw in DISTS[name].requires or []:
            dep = Requirement(raw)
            extras = [e for e in req.extras if dep.marker and dep.marker.evaluate({"extra": e})]
            if dep.marker is None or extras or dep.marker.evaluate({"extra": ""}):
                pending.append(dep)
    return seen


def mib(names: Iterable[str]) -> float:
    total = 0
    for name in names:
        dist = DISTS[name]
        for file in dist.files or ():
            with contextlib.suppress(OSError):  # a RECORD entry that is not on disk
                total += os.path.getsize(str(dist.locate_file(file)))
    return total / 2**20


def main() -> None:
    with (REPO / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    service = closure(project["dependencies"])
    with_eval = closure([*project["dependencies"], *project["optional-dependencies"]["eval"]])
    only_eval = sorted(with_eval - service)
    print(f"service only: {len(service)} distributions, {mib(service):,.0f} MiB")
    print(f"with eval:    {len(with_eval)} distributions, {mib(with_eval):,.0f} MiB")
    print(f"eval adds:    {len(only_eval)} distributions, {mib(only_eval):,.0f} MiB")
    print("  " + " ".join(only_eval))


if __name__ == "__main__":
    main()
