"""What a received file is, read from its bytes — never from the name it was sent under.

A teacher's 教案.docx, a 课件.pptx, a 证书.pdf, a school's 压缩包 of 推门听课 materials. The
name's extension is only believed when the bytes belong to the same family (an OLE2 file
named .wps is a WPS document; one named .xls a spreadsheet), so a renamed program or page
cannot be stored as a 教案.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
                b"mif1", b"msf1"}
# the legacy Office / WPS formats share one container (OLE2 compound file)
_OLE2_EXTENSIONS = ("doc", "xls", "ppt", "wps", "et", "dps")
_OOXML = (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx"))
_OOXML_ALIASES = {"docx": ("docx", "wpsx"), "pptx": ("pptx", "dpsx"), "xlsx": ("xlsx", "etx")}
_LABELS = {"doc": "Word", "docx": "Word", "wps": "WPS 文字", "xls": "Excel", "xlsx": "Excel",
           "et": "WPS 表格", "ppt": "PPT", "pptx": "PPT", "dps": "WPS 演示", "pdf": "PDF",
           "zip": "压缩包", "rar": "压缩包", "7z": "压缩包", "jpg": "图片", "jpeg": "图片",
           "png": "图片", "gif": "图片", "webp": "图片", "heic": "图片"}


def sniff_image(data: bytes) -> str | None:
    """The picture's MIME type from its magic bytes (JPEG, PNG, GIF, WebP, HEIC), else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic"
    return None


def extension_of(name: str | None) -> str:
    """The name's extension, lower case, no dot ("" when it has none)."""
    return PurePosixPath(name or "").suffix.lower().lstrip(".")


def _zip_kind(data: bytes) -> str:
    """docx / pptx / xlsx by the parts inside, else a plain zip (a broken zip too)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return "zip"
    for prefix, kind in _OOXML:
        if any(n.startswith(prefix) for n in names) and "[Content_Types].xml" in names:
            return kind
    return "zip"


def sniff_document(data: bytes, name: str | None) -> str | None:
    """The file's extension as stored (pdf, docx, wps, zip, jpg…), or None when its bytes are
    no document, archive or picture we take."""
    claimed = extension_of(name)
    if data[:5] == b"%PDF-":
        return "pdf"
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        kind = _zip_kind(data)
        return claimed if claimed in _OOXML_ALIASES.get(kind, (kind,)) else kind
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return claimed if claimed in _OLE2_EXTENSIONS else "doc"
    if data[:7] == b"Rar!\x1a\x07\x00" or data[:8] == b"Rar!\x1a\x07\x01\x00":
        return "rar"
    if data[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    image = sniff_image(data)
    if image is not None:
        ext = image.removeprefix("image/").replace("jpeg", "jpg")
        return claimed if ext == "jpg" and claimed == "jpeg" else ext
    return None


def label(ext: str) -> str:
    """How a person calls this kind of file: Word, PPT, PDF, 压缩包…"""
    return _LABELS.get(ext, ext.upper())


def labels(exts: tuple[str, ...]) -> str:
    """The kinds a task takes, each named once: "Word、PDF、PPT"."""
    return "、".join(dict.fromkeys(label(e) for e in exts))
