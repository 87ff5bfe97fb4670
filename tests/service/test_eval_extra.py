"""The eval extra (ranx, ragas, matplotlib, langchain-community) is optional: the service never
imports it, and ``ragctx eval`` without it says how to install it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVAL_ONLY = ("ragas", "matplotlib", "ranx", "langchain_community")


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_starting_the_service_imports_nothing_of_the_eval_extra() -> None:
    done = python(
        "import sys, service.app, service.cli\n"
        f"print(sorted(m for m in {EVAL_ONLY!r} if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["eval", "data/none"], ["eval", "gate", "--baseline", "b.json"]])
def test_eval_without_the_extra_fails_naming_the_install_command(args: list[str]) -> None:
    # None in sys.modules makes `import ragas` fail as if it were not installed
    done = python(
        "import sys\nsys.modules['ragas'] = None\nfrom service.cli import main\n"
        f"sys.argv = ['ragctx', *{args!r}]\nmain()"
    )
    assert done.returncode == 2
    assert "pip install 'ragctx[eval]'" in done.stderr and "missing: ragas" in done.stderr


def test_eval_help_needs_no_extra() -> None:
    done = python(
        "import sys\nsys.modules['ragas'] = None\nfrom service.cli import main\n"
        "sys.argv = ['ragctx', 'eval', '--help']\nmain()"
    )
    assert done.returncode == 0 and "gate" in done.stdout
