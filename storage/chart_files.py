"""Chart images on disk: files_dir/charts/<sha256>.png, named by content, written once."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from storage.files import write_durably

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
    return ChartFile(sha, write_durably(charts_dir(files_dir) / f"{sha}.png", png))
