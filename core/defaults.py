"""The default of every stage parameter that settings can change, stated once.

``service.settings.Settings`` takes its defaults from here, and so do the stages' own parameter
objects (``RetrievalParams``, ``RerankParams``, ``ChunkingParams``, ``Bm25Params``,
``EncoderParams``), so a library caller and a configured server start from the same values.
"""

from __future__ import annotations

from typing import Final

# Chunking (ingest)
CHUNK_TOKENS: Final = 200  # tiktoken tokens per chunk, title and heading path included
CHUNK_OVERLAP: Final = 30
CHUNK_ENCODING: Final = "cl100k_base"

# BM25 (document side; stored with a collection, since its vectors depend on them)
BM25_K: Final = 1.2
BM25_B: Final = 0.75
BM25_AVG_LEN: Final = 72.0  # average chunk length in BM25 tokens, measured on SciFact
BM25_LANGUAGE: Final = "english"

# Dense encoder
DENSE_BATCH_SIZE: Final = 64
DENSE_BACKEND: Final = "onnx"
QUERY_CACHE_SIZE: Final = 1024

# Retrieval
DENSE_LIMIT: Final = 200
BM25_LIMIT: Final = 200
RRF_K: Final = 60
TOP_K: Final = 50
MAX_QUERY_CHARS: Final = 2_000

# Rerank
RERANK_TOP_N: Final = 50
RERANK_BATCH_SIZE: Final = 32
RERANK_MAX_LENGTH: Final = 512
RERANK_BACKEND: Final = "torch"
RERANK_BUDGET_MS: Final = 0.0
