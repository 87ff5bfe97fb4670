"""Fixtures for the assembler: real tiktoken counters on offline encoding files.

The assembler is a pure function, so these tests need no store and no model: candidates are
built by hand (see ``builders.py``) and tokens are counted with real tiktoken encodings.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

# tiktoken downloads encodings on first use; point it at llama-index's bundled copies
# (cl100k_base and o200k_base) before anything calls tiktoken.get_encoding.
os.environ.setdefault(
    "TIKTOKEN_CACHE_DIR",
    str(Path(sysconfig.get_paths()["purelib"]) / "llama_index/core/_static/tiktoken_cache"),
)

from assembler.tokens import TiktokenCounter, tiktoken_counter  # noqa: E402


@pytest.fixture(scope="session")
def counter() -> TiktokenCounter:
    return tiktoken_counter("cl100k_base")


@pytest.fixture(scope="session")
def o200k() -> TiktokenCounter:
    return tiktoken_counter("o200k_base")
