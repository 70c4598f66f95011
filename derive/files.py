"""Writing output files: whole or not at all, and files written together as a matching set."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path

from derive.errors import DeriveError


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write the whole file or nothing: a temporary file beside it, renamed over it at the end."""
    write_set({Path(path): content})


def _staged(path: Path, data: bytes) -> Path:
    """`data` in a temporary file beside `path`, to be renamed over it."""
    path = Path(path)
    if path.is_dir():
        raise DeriveError("is a directory", str(path))
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DeriveError("its folder does not exist", str(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
    except OSError as err:
        raise DeriveError(f"cannot write: {err.strerror}", str(path)) from None
    return Path(tmp)


def write_set(files: Mapping[Path, str | bytes]) -> list[Path]:
    """Write files that belong together (a .tex and its .pdf, the files of `derive build`): all new or
    all as they were. Every file is staged beside its target first; only then are they renamed into
    place, with SIGINT and SIGTERM held back for those few renames, so that an interrupt lands before
    the switch (nothing changed) or after it (the new set complete)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            staged.append((_staged(path, data), Path(path)))
        held = {signal.SIGINT, signal.SIGTERM}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            for tmp, path in staged:
                os.replace(tmp, path)
        except OSError as err:
            raise DeriveError(f"cannot write: {err.strerror}", str(path)) from None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [Path(p) for p in files]
