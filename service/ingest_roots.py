"""Where admin ingest jobs may read: the folders of ``RAGCTX_INGEST_ROOTS`` (DESIGN.md §3).

An admin key names paths on the server's disk, so the server reads only below its ingest roots:
a source whose real path (every symlink in it resolved) lies outside them is refused, and so is
a folder with a symlink in it that leads outside. Without the setting the one root is the
server's working directory at start. A source that is a fifo, socket or device is refused
before anything opens it (opening a fifo blocks); such files inside a folder are reported as
failed documents by the readers (``ingest.readers.open_regular``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from core.errors import ForbiddenError, InvalidInputError

SETTING = "RAGCTX_INGEST_ROOTS"


def resolve_roots(configured: Sequence[Path] | None) -> tuple[Path, ...]:
    """The real paths of the configured roots; the working directory when none are set."""
    paths = [Path.cwd()] if configured is None else list(configured)
    return tuple(p.expanduser().resolve() for p in paths)


def _inside(real: Path, roots: Sequence[Path]) -> bool:
    return any(real.is_relative_to(root) for root in roots)


def _outside(shown: str, roots: Sequence[Path], field: str) -> ForbiddenError:
    listed = ", ".join(str(r) for r in roots) or "none"
    return ForbiddenError(
        f"{field} {shown!r} leads outside the server's ingest roots ({listed}); the server reads "
        f"sources only below {SETTING}: move the source there or add its folder to {SETTING}",
        field=field,
    )


def check_source(path: Path, roots: Sequence[Path], *, field: str) -> None:
    """Raise unless ``path`` and every symlink below it stay inside ``roots``.

    Raises:
        ForbiddenError: the real path, or a symlink in the folder, leads outside the roots.
        InvalidInputError: the path is a fifo, socket or device, or cannot be resolved.
    """
    try:
        real = path.resolve(strict=True)
        mode = real.stat().st_mode
    except (OSError, RuntimeError) as err:  # RuntimeError: a symlink loop
        raise InvalidInputError(
            f"{field} {str(path)!r} cannot be resolved on the server ({err}); give an existing "
            "file or folder",
            field=field,
            value=str(path),
        ) from None
    if not _inside(real, roots):
        raise _outside(str(path), roots, field)
    if stat.S_ISREG(mode):
        return
    if not stat.S_ISDIR(mode):
        what = (
            "a fifo" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        )
        raise InvalidInputError(
            f"{field} {str(path)!r} is {what}, not a file or folder; the server reads only "
            "regular files and folders",
            field=field,
            value=str(path),
        )
    _check_folder(real, str(path), roots, field)


def _check_folder(real: Path, shown: str, roots: Sequence[Path], field: str) -> None:
    """Every symlink the ingest walk could follow (hidden names are skipped, as it does)."""
    for folder, dirs, files in os.walk(real, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in (*dirs, *files):
            if name.startswith("."):
                continue
            entry = Path(folder, name)
            if not entry.is_symlink():
                continue
            rel = entry.relative_to(real).as_posix()
            try:
                target = entry.resolve(strict=False)
            except (OSError, RuntimeError):
                target = None
            if target is None or not _inside(target, roots):
                raise _outside(f"{shown.rstrip('/')}/{rel}", roots, field)
