"""``import assembler`` must not pull in the heavy stack: it is a pure, light function."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "qdrant_edge", "qdrant_client", "sentence_transformers", "llama_index")


def test_importing_the_assembler_loads_no_models_and_no_store() -> None:
    code = (
        "import assembler, assembler.policy, sys; "
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
