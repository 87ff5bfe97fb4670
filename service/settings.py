"""The one settings object: ``RAGCTX_*`` environment variables, or an optional ``ragctx.toml``.

Only this module reads the environment. Stages never see ``Settings``: ``service.wiring`` turns
it into the parts (store, encoders, chunker, parameters, reranker, policies, keys), and the CLI and
the HTTP app take them from there. Stage parameter defaults come from ``core.defaults``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import DirectoryPath, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core import defaults

DEFAULT_DENSE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_RERANK_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"


class Settings(BaseSettings):
    """Every setting of ragctx. Environment variables are the field names, upper-cased, with the
    ``RAGCTX_`` prefix (``RAGCTX_QDRANT_PATH``); ``ragctx.toml`` in the working directory may set
    the same keys (lower-case, without the prefix). Environment variables win over the file."""

    model_config = SettingsConfigDict(
        env_prefix="RAGCTX_", toml_file="ragctx.toml", extra="forbid", validate_default=True
    )

    # Store
    qdrant_path: Path = Field(Path(".ragctx/qdrant"), description="Embedded store folder.")
    qdrant_url: str | None = Field(None, description="Qdrant server/cluster URL; overrides path.")
    qdrant_api_key: SecretStr | None = None
    collection: str = Field("docs", description="Default collection.")
    optimize_threshold: int = Field(
        5_000, ge=0, description="After a standalone ingest, optimize() collections this big."
    )

    # Models
    dense_model: str = Field(DEFAULT_DENSE_MODEL, description="Hub id or local folder.")
    dense_batch_size: int = Field(defaults.DENSE_BATCH_SIZE, ge=1)
    dense_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        defaults.DENSE_BACKEND,
        description="Dense encoder runtime; onnx falls back to torch (logged) if it cannot load.",
    )
    onnx_cache_dir: Path = Field(
        Path(".ragctx/onnx"), description="Exported ONNX models, keyed by a hash of the model."
    )
    query_cache_size: int = Field(
        defaults.QUERY_CACHE_SIZE,
        ge=0,
        description="LRU entries of query embeddings and BM25 query vectors; 0 disables it.",
    )
    rerank_model: str | None = Field(
        DEFAULT_RERANK_MODEL, description="Cross-encoder hub id or folder; empty disables it."
    )
    rerank_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        defaults.RERANK_BACKEND,
        description="Cross-encoder runtime; onnx (fp32, same rankings) and onnx-int8 fall back "
        "to torch (logged) if they cannot load.",
    )
    rerank_trained: bool = Field(
        True,
        description="False marks the reranker as an untrained test model: its stage is run "
        "but reported inactive, never as measured.",
    )
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads.")
    device: str = Field("cpu", description="torch device for the encoders.")

    # Ingest
    chunk_tokens: int = Field(
        defaults.CHUNK_TOKENS, ge=16, description="tiktoken tokens per chunk (with header)."
    )
    chunk_overlap: int = Field(defaults.CHUNK_OVERLAP, ge=0)
    chunk_encoding: Literal["cl100k_base", "o200k_base"] = defaults.CHUNK_ENCODING
    tiktoken_cache_dir: DirectoryPath | None = Field(
        None,
        description="Folder holding tiktoken's BPE files (offline machines; `make install` "
        "writes llama-index's copy); set as TIKTOKEN_CACHE_DIR before the first encoding loads.",
    )
    max_doc_chars: int = Field(2_000_000, ge=1)
    max_doc_bytes: int = Field(
        8_000_000,
        ge=1,
        description="Larger files (and JSON Lines lines) are reported as failed, not parsed.",
    )
    mass_delete_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A sync that would delete more than this share of a source's documents "
        "deletes none of them without --allow-mass-delete.",
    )
    mass_delete_min_docs: int = Field(
        5, ge=1, description="Fewer deletions than this never count as a mass delete."
    )
    ingest_roots: list[Path] | None = Field(
        None,
        description="Folders admin ingest jobs may read below (JSON list in the environment); "
        "unset: the server's working directory at start.",
    )
    default_tenant: str = "default"
    default_groups: list[str] = Field(default_factory=lambda: ["public"])
    bm25_k: float = Field(defaults.BM25_K, gt=0)
    bm25_b: float = Field(defaults.BM25_B, ge=0, le=1)
    bm25_avg_len: float = Field(
        defaults.BM25_AVG_LEN,
        gt=0,
        description="Average chunk length in BM25 tokens (measured on SciFact).",
    )
    bm25_language: str = defaults.BM25_LANGUAGE

    # Retrieval
    dense_limit: int = Field(defaults.DENSE_LIMIT, ge=1, le=10_000)
    bm25_limit: int = Field(defaults.BM25_LIMIT, ge=1, le=10_000)
    rrf_k: int = Field(defaults.RRF_K, ge=1)
    rerank_top_n: int = Field(defaults.RERANK_TOP_N, ge=1)
    rerank_max_length: int = Field(
        defaults.RERANK_MAX_LENGTH,
        ge=16,
        description="Word-pieces of each (query, passage) pair the reranker sees.",
    )
    rerank_batch_size: int = Field(
        defaults.RERANK_BATCH_SIZE, ge=1, description="Pairs per reranker batch."
    )
    rerank_budget_ms: float = Field(
        defaults.RERANK_BUDGET_MS,
        ge=0,
        description="Stop reranking after the batch that reaches this many ms (0: no budget); "
        "the rest keep hybrid order.",
    )
    max_query_chars: int = Field(defaults.MAX_QUERY_CHARS, ge=1)

    # Quality reports: an OpenAI-compatible judge for ragas' LLM metrics (off when unset)
    judge_url: str | None = Field(None, description="OpenAI-compatible endpoint for LLM metrics.")
    judge_model: str | None = Field(None, description="Judge model name.")
    judge_api_key: SecretStr | None = None
    reports_dir: Path = Field(
        Path("eval/reports"),
        description="Quality reports folder the review console's quality view reads (where "
        "`ragctx eval` files its runs by default).",
    )

    # Assembly and service
    policy_dir: Path = Path("data/policies")
    default_policy: str = "default"
    keys_file: Path = Path("data/keys.toml")
    max_budget_tokens: int = Field(32_000, ge=1)
    max_concurrency: int = Field(8, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65_535)
    max_body_bytes: int = Field(
        1_048_576,
        ge=1_024,
        description="Largest request body the HTTP service reads (413 above); a whole prompt "
        "(conversation, tool outputs, items) needs room.",
    )
    admin_key: SecretStr | None = Field(
        None, description="Admin API key `ragctx ingest` uses to hand a job to a running server."
    )
    api_key: SecretStr | None = Field(
        None, description="API key `ragctx mcp` (stdio) acts as: tenant and groups come from it."
    )
    audit_include_text: bool = False

    # Trace store (service/traces): one row per answer, feedback on it
    trace_store: bool = Field(True, description="False: answers are not recorded.")
    trace_db: str | None = Field(
        None,
        description="sqlite:/// or postgresql:// URL; unset: traces.sqlite3 next to the store.",
    )
    trace_text: bool = Field(
        True, description="Store the query text in traces; False stores only its sha256."
    )
    trace_retention_days: int = Field(
        30,
        ge=0,
        description="Traces older than this many days are purged by the server (at start, then "
        "hourly) and by `ragctx traces purge`; 0 keeps traces forever.",
    )
    trace_queue: int = Field(
        10_000, ge=1, description="Traces waiting for the writer; more are dropped and counted."
    )
    otel_exporter: Literal["none", "console", "otlp", "memory"] = "none"
    log_json: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 (no .env support)
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments, then the environment, then ``ragctx.toml``."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        from index.schema import validate_collection_name

        return validate_collection_name(value)

    @field_validator("rerank_model")
    @classmethod
    def _empty_disables(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_tokens "
                f"({self.chunk_tokens}); set RAGCTX_CHUNK_OVERLAP lower"
            )
        return self
