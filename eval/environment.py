"""What a report records about where it ran: git commit, threads, library versions, machine."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["LIBRARIES", "describe_environment", "git_state"]

LIBRARIES = (
    "ragctx", "torch", "sentence-transformers", "transformers", "qdrant-edge-py", "qdrant-client",
    "ranx", "ragas", "llama-index-core", "tiktoken", "numpy",
)  # fmt: skip


def git_state(repo: Path | None = None) -> dict[str, Any]:
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
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def describe_environment() -> dict[str, Any]:
    """Machine, Python, thread counts (torch, OpenMP/BLAS pools) and library versions."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "libraries": {},
        "threads": {},
    }
    for name in LIBRARIES:
        try:
            env["libraries"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env["libraries"][name] = None
    try:
        import torch

        env["threads"]["torch_intra_op"] = torch.get_num_threads()
        env["threads"]["torch_inter_op"] = torch.get_num_interop_threads()
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

        env["threads"]["pools"] = [
            {
                "api": info.get("user_api"),
                "library": info.get("internal_api"),
                "threads": info.get("num_threads"),
            }
            for info in threadpool_info()
        ]
    except ImportError:
        pass
    return env
