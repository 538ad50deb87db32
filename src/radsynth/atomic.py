"""Write outputs so that a crash or a kill never leaves a half-written result behind.

``atomic_output_dir`` fills a temporary sibling directory and renames it into place only when
everything succeeded; ``atomic_write_bytes`` does the same for single files (checkpoints).
An existing output is never replaced unless ``force=True``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from radsynth.errors import InputError


def check_output_free(out: Path, force: bool) -> None:
    """Refuse to replace an existing, non-empty output unless ``force``."""
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError(out, "already exists and is not empty; pass --force to replace it")


@contextlib.contextmanager
def atomic_output_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out`` only if the block finishes.

    On any exception (KeyboardInterrupt included) the temporary directory is removed and ``out``
    is left exactly as it was.
    """
    out = Path(out)
    check_output_free(out, force)
    created = [p for p in out.absolute().parents if not p.exists()]  # folders this call makes, deepest first
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # a failed run leaves no empty parent folders behind either
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "previous")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write_bytes`` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
