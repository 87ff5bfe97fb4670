"""What a report records about where it ran: git commit, threads, library versions, machine."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LIBRARIES",
    "Environment",
    "GitState",
    "ThreadPool",
    "Threads",
    "describe_environment",
    "git_state",
]

LIBRARIES = (
    "ragctx", "torch", "sentence-transformers", "transformers", "qdrant-edge-py", "qdrant-client",
    "ranx", "ragas", "llama-index-core", "tiktoken", "numpy",
)  # fmt: skip


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GitState(_Record):
    """The commit checked out, and whether tracked files differ from it (nulls outside git)."""

    commit: str | None = None
    dirty: bool | None = None


class ThreadPool(_Record):
    """One native thread pool (threadpoolctl): its API, library and size."""

    api: str | None
    library: str | None
    threads: int | None


class Threads(_Record):
    """Thread counts; a key is absent when its library is not installed."""

    torch_intra_op: int | None = Field(default=None, exclude_if=lambda v: v is None)
    torch_inter_op: int | None = Field(default=None, exclude_if=lambda v: v is None)
    pools: list[ThreadPool] | None = Field(default=None, exclude_if=lambda v: v is None)


class Environment(_Record):
    """Machine, Python, thread counts, library versions (None: not installed), git state."""

    python: str
    platform: str
    machine: str
    cpu_count: int | None
    libraries: dict[str, str | None]
    threads: Threads
    git: GitState


def git_state(repo: Path | None = None) -> GitState:
    """The commit checked out in ``repo`` (default: this package's repository), and whether
    tracked files differ from it; nulls outside a git checkout."""
    where = repo or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return GitState()
    return GitState(commit=commit, dirty=bool(status.strip()))


def describe_environment() -> Environment:
    """Machine, Python, thread counts (torch, OpenMP/BLAS pools), library versions, git."""
    libraries: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    return Environment(
        python=platform.python_version(),
        platform=platform.platform(),
        machine=platform.machine(),
        cpu_count=os.cpu_count(),
        libraries=libraries,
        threads=_threads(),
        git=git_state(),
    )


def _threads() -> Threads:
    intra = inter = None
    pools = None
    try:
        import torch

        intra, inter = torch.get_num_threads(), torch.get_num_interop_threads()
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

        pools = [
            ThreadPool(
                api=info.get("user_api"),
                library=info.get("internal_api"),
                threads=info.get("num_threads"),
            )
            for info in threadpool_info()
        ]
    except ImportError:
        pass
    return Threads(torch_intra_op=intra, torch_inter_op=inter, pools=pools)
