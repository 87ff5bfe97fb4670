"""The default of every stage parameter that settings can change, stated once.

``service.settings.Settings`` takes its defaults from here, and so do the stages' own parameter
objects (``RetrievalParams``, ``RerankParams``, ``ChunkingParams``, ``Bm25Params``,
``EncoderParams``), so a library caller and a configured server start from the same values.
"""

from __future__ import annotations

from typing import Final

# Chunking (ingest)
CHUNK_TOKENS = 200  # tiktoken tokens per chunk, title and heading path included
CHUNK_OVERLAP = 30
CHUNK_ENCODING: Final = "cl100k_base"

# BM25 (document side; stored with a collection, since its vectors depend on them)
BM25_K = 1.2
BM25_B = 0.75
BM25_AVG_LEN = 72.0  # average chunk length in BM25 tokens, measured on SciFact
BM25_LANGUAGE: Final = "english"

# Dense encoder
DENSE_BATCH_SIZE = 64
DENSE_BACKEND: Final = "onnx"
QUERY_CACHE_SIZE = 1024

# Retrieval
DENSE_LIMIT = 200
BM25_LIMIT = 200
RRF_K = 60
TOP_K = 50
MAX_QUERY_CHARS = 2_000

# Rerank
RERANK_TOP_N = 50
RERANK_BATCH_SIZE = 32
RERANK_MAX_LENGTH = 512
RERANK_BACKEND: Final = "torch"
RERANK_BUDGET_MS = 0.0
