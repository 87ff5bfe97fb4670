"""Settings become parts in one place (service.wiring): defaults agree, the tiktoken setting
works offline, nothing imports the CLI module, and service/ has no import cycle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import llama_index.core
import pytest

from core import defaults
from core.errors import InvalidInputError
from index.encoders import Bm25Params, EncoderParams
from ingest import ChunkingParams
from retrieval.rerank import RerankParams
from retrieval.types import RetrievalParams
from service import wiring
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BPE = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"


@pytest.fixture
def bare_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Settings as a new user gets them: no RAGCTX_* variable, no ragctx.toml."""
    for name in list(os.environ):
        if name.startswith("RAGCTX_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return Settings()


def test_a_configured_server_and_a_library_caller_start_from_the_same_defaults(
    bare_settings: Settings,
) -> None:
    assert wiring.retrieval_params(bare_settings, top_k=defaults.TOP_K) == RetrievalParams()
    assert wiring.rerank_params(bare_settings) == RerankParams()
    assert wiring.chunking_params(bare_settings) == ChunkingParams()
    params = wiring.encoder_params(bare_settings)
    assert params.bm25 == Bm25Params()
    library = EncoderParams(dense_model=bare_settings.dense_model)
    assert (params.backend, params.batch_size, params.query_cache_size) == (
        library.backend,
        library.batch_size,
        library.query_cache_size,
    )


def test_serving_caps_torch_threads_unless_configured(bare_settings: Settings) -> None:
    assert wiring.encoder_params(bare_settings, serving=True).torch_threads == 1
    assert wiring.encoder_params(bare_settings).torch_threads is None
    four = bare_settings.model_copy(update={"torch_threads": 4})
    assert wiring.encoder_params(four, serving=True).torch_threads == 4


def test_bad_settings_name_the_setting_and_the_fix(bare_settings: Settings) -> None:
    with pytest.raises(InvalidInputError, match=r"dense_limit: .*RAGCTX_\* variable") as err:
        wiring.load_settings(dense_limit=0)
    assert err.value.exit_code == 2
    with pytest.raises(InvalidInputError, match="tiktoken_cache_dir"):
        wiring.load_settings(tiktoken_cache_dir="/nonexistent/bpe")


_COUNT = (
    "from service.wiring import load_settings; load_settings(); "
    "from assembler.tokens import tiktoken_counter; "
    "print(tiktoken_counter('cl100k_base').count('offline tokens'))"
)


def _count_offline(cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Count tokens in a fresh process with no tiktoken variable and an empty temp folder:
    tiktoken's own fallback cache lives there, so only the setting can supply the BPE file
    (this machine has no internet to fetch it)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAGCTX_", "TIKTOKEN_", "DATA_GYM_"))
    }
    env.update(TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", _COUNT],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tiktoken_setting_loads_encodings_without_internet(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "ragctx.toml").write_text(f'tiktoken_cache_dir = "{BPE}"\n')
    done = _count_offline(work, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"


def test_without_the_setting_the_encoding_error_says_what_to_set(tmp_path: Path) -> None:
    done = _count_offline(tmp_path, tmp_path)
    assert done.returncode != 0
    assert "RAGCTX_TIKTOKEN_CACHE_DIR" in done.stderr


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports inside functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _service_modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "service").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "migrations" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def test_nothing_imports_the_cli_module() -> None:
    importers = [
        name
        for name, path in _service_modules().items()
        if name != "service.cli" and "service.cli" in _imports(path)
    ]
    assert importers == []


def test_service_has_no_import_cycle() -> None:
    modules = _service_modules()
    graph = {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # a package's __init__ re-exporting its own modules is not a cycle of the code's layers
    graph = {n: {m for m in deps if not n.startswith(f"{m}.")} for n, deps in graph.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
