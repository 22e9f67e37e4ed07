"""Chart images on disk: files_dir/charts/<sha256>.png, named by content, written once."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

CHARTS_DIR = "charts"
_CHART_NAME = re.compile(r"^[0-9a-f]{64}\.png$")


@dataclass(frozen=True, slots=True)
class ChartFile:
    sha256: str
    path: Path  # absolute: the outbox row keeps it and the send route reads it

    @property
    def name(self) -> str:
        return f"{self.sha256}.png"


def is_chart_name(name: str) -> bool:
    """Only `<64 lowercase hex>.png` names a chart (nothing else can be asked for)."""
    return bool(_CHART_NAME.match(name))


def charts_dir(files_dir: Path) -> Path:
    return files_dir.resolve() / CHARTS_DIR


def save_chart(files_dir: Path, png: bytes) -> ChartFile:
    """Write the PNG under its hash (temp file + rename); an existing file is kept. Blocking."""
    sha = hashlib.sha256(png).hexdigest()
    folder = charts_dir(files_dir)
    path = folder / f"{sha}.png"
    if path.is_file() and path.stat().st_size == len(png):
        return ChartFile(sha, path)
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{sha}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temp, "wb") as f:
            f.write(png)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return ChartFile(sha, path)
