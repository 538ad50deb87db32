"""Write outputs so that a crash or a kill never leaves a half-written result behind.

``atomic_output_dir`` fills a temporary sibling directory and renames it into place only when
everything succeeded; ``atomic_write_bytes`` does the same for single files (checkpoints).
An existing output is never replaced unless ``force=True``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
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


def _host_tag() -> str:
    """This host's name reduced to letters and digits (a safe part of a file name)."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _owner_tag() -> str:
    """``host-pid`` of this process, part of every temporary name, so that leftovers of a killed run can be told apart."""
    return f"{_host_tag()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete ``.NAME.tmp-*`` / ``.NAME.old-*`` siblings of ``out`` left by a killed run on this host.

    Only folders whose recorded process (``host-pid`` in the name) is this host's and no longer
    runs are removed; a concurrent writer's temporary folder is left alone. Returns what was removed.
    """
    out = Path(out)
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(tmp|old)-{re.escape(_host_tag())}-(\d+)-")
    removed = []
    if not out.parent.is_dir():
        return removed
    for sibling in out.parent.iterdir():
        match = pattern.match(sibling.name)
        if match and sibling.is_dir() and int(match.group(2)) != os.getpid() and not _pid_alive(int(match.group(2))):
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling)
    return removed


@contextlib.contextmanager
def atomic_output_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out`` only if the block finishes.

    On any exception (KeyboardInterrupt included) the temporary directory is removed and ``out``
    is left exactly as it was. Temporary folders a SIGKILLed run left behind are removed first.
    """
    out = Path(out)
    check_output_free(out, force)
    created = [p for p in out.absolute().parents if not p.exists()]  # folders this call makes, deepest first
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # a SIGKILLed earlier run could not clean up after itself
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{_owner_tag()}-", dir=out.parent))
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
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{_owner_tag()}-", dir=out.parent))
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
