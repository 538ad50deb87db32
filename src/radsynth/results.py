"""Reading the results.json that ``evaluate segment``, ``evaluate classify`` and ``quality`` write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from radsynth.errors import InputError


def read_results_file(path: Path, file_name: str, results_format: str) -> dict[str, Any]:
    """``path/file_name`` (or ``path`` itself when it is a file) parsed, after checking its ``format`` field."""
    path = Path(path)
    file = path / file_name if path.is_dir() else path
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(file, f"cannot read results ({type(exc).__name__}: {exc})") from None
    if not isinstance(results, dict) or results.get("format") != results_format:
        raise InputError(file, f"is not a {results_format} file")
    return results
