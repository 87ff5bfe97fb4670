"""ONNX Runtime backend of the dense encoder and the cross-encoder: export once, cache, run.

The sentence-transformers model's transformer is exported with ``torch.onnx.export`` (the
TorchScript exporter); mean pooling and L2 normalisation run here in numpy, exactly as the
sentence-transformers ``Pooling`` + ``Normalize`` modules do, with the model's own tokenizer.
Exports are cached under ``onnx_cache_dir`` as ``<hash of the model files>-<backend>.onnx``,
written to a temporary file and renamed (a crash never leaves a half-written model under the
final name). A cached file that does not load is rebuilt, not trusted. A one-logit
``CrossEncoder`` is exported the same way (its classification ``logits``), under
``<hash>-ce-<backend>.onnx``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_hash(model: Any, name: str) -> str:
    """sha256 of the model folder's files (names and bytes), or of its weights when no folder."""
    digest = hashlib.sha256()
    folder = Path(name)
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(folder)).encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    else:
        for key, tensor in model.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:24]


def _atomic_target(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _export_fp32(model: Any, target: Path) -> None:
    """Export a sentence-transformers model's transformer (last hidden state)."""
    _export_module(
        model[0].auto_model, model.tokenizer, target, "last_hidden_state", ["warm up", "a"]
    )


def _export_module(
    hf_model: Any, tokenizer: Any, target: Path, output: str, *sample_text: Any
) -> None:
    """Export a transformers model's ``output`` with dynamic batch and sequence axes."""
    import torch

    hf_model = hf_model.eval()
    names = [n for n in _INPUTS if n in tokenizer.model_input_names]

    class _Output(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return getattr(self.inner(**dict(zip(names, args, strict=True))), output)

    sample = tokenizer(*sample_text, padding=True, return_tensors="pt")
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "seq"} for n in names}
    axes[output] = {0: "batch"} if output == "logits" else {0: "batch", 1: "seq"}
    tmp = _atomic_target(target)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on branches BERT never takes
            torch.onnx.export(
                _Output(hf_model),
                tuple(sample[n] for n in names),
                str(tmp),
                input_names=names,
                output_names=[output],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _atomic_target(target)
    try:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _session(path: Path, device: str, threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def _cached(path: Path, build: Any, device: str, threads: int | None) -> Any:
    if path.exists():
        try:
            return _session(path, device, threads)
        except Exception as err:  # noqa: BLE001 -- onnxruntime raises its own untyped errors
            log.warning("cached ONNX model %s does not load (%s); rebuilding it", path, err)
            path.unlink(missing_ok=True)
    build(path)
    return _session(path, device, threads)


def dense_session(model: Any, params: Any) -> Any:
    """An ONNX Runtime session for the model in ``params`` (exported and cached if needed)."""
    if params.backend not in BACKENDS[1:]:
        raise ValueError(f"unknown dense backend {params.backend!r}; use one of {BACKENDS}")
    return _backend_session(
        params.backend,
        Path(params.onnx_cache_dir) / model_hash(model, params.dense_model),
        lambda p: _export_fp32(model, p),
        params.device,
        params.torch_threads,
    )


def rerank_session(
    cross_encoder: Any,
    name: str,
    *,
    backend: str,
    cache_dir: Path,
    device: str = "cpu",
    threads: int | None = None,
) -> Any:
    """An ONNX Runtime session of a one-logit ``CrossEncoder`` (exported and cached if needed).

    The export is the classification model's ``logits``; its cache key adds ``-ce`` to the
    hash of the model's files, so a folder used as both kinds of model never collides.
    """
    key = model_hash(cross_encoder.model, name) + "-ce"
    sample = (["warm up", "a"], ["a passage", "b"])
    return _backend_session(
        backend,
        Path(cache_dir) / key,
        lambda p: _export_module(
            cross_encoder.model, cross_encoder.tokenizer, p, "logits", *sample
        ),
        device,
        threads,
    )


def _backend_session(
    backend: str, stem: Path, export: Any, device: str, threads: int | None
) -> Any:
    if backend not in BACKENDS[1:]:
        raise ValueError(f"unknown ONNX backend {backend!r}; use one of {BACKENDS}")
    fp32 = stem.with_name(f"{stem.name}-onnx.onnx")
    if backend == "onnx":
        return _cached(fp32, export, device, threads)

    def build_int8(path: Path) -> None:
        if not fp32.exists():
            export(fp32)
        _quantize(fp32, path)

    int8 = stem.with_name(f"{stem.name}-onnx-int8.onnx")
    return _cached(int8, build_int8, device, threads)


def score_pairs(
    session: Any,
    tokenizer: Any,
    query: str,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
) -> np.ndarray:
    """One-logit cross-encoder scores of (query, text) pairs, float32 (len(texts),)."""
    wanted = {i.name for i in session.get_inputs()}
    parts: list[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        enc = tokenizer(
            [query] * len(batch),
            batch,
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        feed = {n: np.asarray(enc[n], dtype=np.int64) for n in _INPUTS if n in wanted}
        (logits,) = session.run(["logits"], feed)
        parts.append(np.asarray(logits, dtype=np.float32).reshape(len(batch), -1)[:, 0])
    if not parts:
        return np.zeros((0,), dtype=np.float32)
    return np.concatenate(parts, axis=0)


def encode_dense(
    session: Any, tokenizer: Any, texts: Sequence[str], max_tokens: int, batch_size: int
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings, as float32 (len(texts), dim)."""
    wanted = {i.name for i in session.get_inputs()}
    parts: list[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        enc = tokenizer(
            batch, padding=True, truncation=True, max_length=max_tokens, return_tensors="np"
        )
        feed = {n: np.asarray(enc[n], dtype=np.int64) for n in _INPUTS if n in wanted}
        (hidden,) = session.run(["last_hidden_state"], feed)
        mask = feed["attention_mask"][..., None].astype(np.float32)
        summed = (hidden * mask).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        parts.append((pooled / np.clip(norms, 1e-12, None)).astype(np.float32))
    return np.concatenate(parts, axis=0)
