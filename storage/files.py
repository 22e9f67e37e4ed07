"""Received photos and documents on disk, named by content hash: the same bytes are one file,
written once."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
              "image/webp": ".webp", "image/heic": ".heic"}


def photo_path(files_dir: Path, sha256: str, mime: str) -> Path:
    """Where a photo with this hash lives: files/photos/ab/ab12….jpg."""
    return files_dir / "photos" / sha256[:2] / f"{sha256}{EXTENSIONS.get(mime, '')}"


def write_photo_file(files_dir: Path, sha256: str, mime: str, data: bytes) -> Path:
    """Write the bytes durably (temp file, fsync, rename); an existing complete file is kept.

    Blocking: call it through asyncio.to_thread.
    """
    return write_durably(photo_path(files_dir, sha256, mime), data)


def document_path(files_dir: Path, sha256: str, ext: str) -> Path:
    """Where a handed-in document lives: files/documents/ab/ab12….docx."""
    return files_dir / "documents" / sha256[:2] / f"{sha256}.{ext}"


def write_document_file(files_dir: Path, sha256: str, ext: str, data: bytes) -> Path:
    """As write_photo_file, for a document. Blocking: call it through asyncio.to_thread."""
    return write_durably(document_path(files_dir, sha256, ext), data)


def write_durably(path: Path, data: bytes) -> Path:
    """Content-addressed write: temp file, fsync, rename, fsync the folder; an existing
    complete file is kept. Blocking."""
    if path.is_file() and path.stat().st_size == len(data):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
