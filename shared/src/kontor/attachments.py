"""What a document attached to an order or an invoice draft may be: its type judged by its
bytes, its name made safe. Pure; the orders and invoicing services apply the same rules.

Allowed are PDF, PNG, JPEG and the office formats members attach to offers (Word, Excel,
PowerPoint, both the legacy OLE2 formats and Office Open XML, and OpenDocument text and
spreadsheets). The type is taken from the content and must agree with the type the
uploader declared and with the name's extension, so that nobody receives as "offer.pdf"
what is really something else.

Why magic numbers and not a sniffing library: there are seven formats to recognise, each
with a fixed signature (PDF, PNG, JPEG, the OLE2 header) or a ZIP container whose member
names tell the format (Office Open XML, OpenDocument's `mimetype` entry). The standard
library's `zipfile` reads those names from the central directory without decompressing
anything, which is exact where `filetype`/`puremagic` guess from the first kilobytes, and
it adds no dependency to the service.
"""
from __future__ import annotations

import io
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass

from kontor.errors import InvalidInput

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"

# media type -> the extensions a file of that type may have
EXTENSIONS: dict[str, tuple[str, ...]] = {
    PDF: (".pdf",), PNG: (".png",), JPEG: (".jpg", ".jpeg"),
    DOC: (".doc",), XLS: (".xls",), PPT: (".ppt",),
    DOCX: (".docx",), XLSX: (".xlsx",), PPTX: (".pptx",), ODT: (".odt",), ODS: (".ods",),
}
ALLOWED_MEDIA_TYPES = frozenset(EXTENSIONS)
# What browsers and tools send for the same types, or when they do not know the type.
ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG}
UNDECLARED = frozenset({"", "application/octet-stream"})
MAX_FILENAME_LENGTH = 200
# The default of each service's size setting (`attachment_max_bytes`).
DEFAULT_MAX_BYTES = 10 * 1024 * 1024

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# The stream that makes an OLE2 compound file a Word, Excel or PowerPoint document, as its
# directory stores the name (UTF-16LE).
OLE2_STREAMS = ((DOC, ("WordDocument",)), (XLS, ("Workbook", "Book")), (PPT, ("PowerPoint Document",)))
OOXML_PARTS = ((DOCX, "word/"), (XLSX, "xl/"), (PPTX, "ppt/"))


def sniff(content: bytes) -> str | None:
    """The allowed media type that `content` is, or None."""
    if content.startswith(b"%PDF-"):
        return PDF
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    if content.startswith(OLE2):
        for media_type, streams in OLE2_STREAMS:
            if any(_has_stream(content, name) for name in streams):
                return media_type
        return None
    if content.startswith(b"PK\x03\x04"):
        return _sniff_zip(content)
    return None


def _has_stream(content: bytes, name: str) -> bool:
    """Whether an OLE2 file's directory has an entry `name`: directory entries are 128-byte
    records (after the 512-byte header) that begin with the NUL-terminated UTF-16LE name and
    give its length in bytes at offset 64; text inside a stream is not such a record."""
    needle = name.encode("utf-16-le") + b"\x00\x00"
    size = len(needle).to_bytes(2, "little")
    at = content.find(needle, 512)
    while at != -1:
        if at % 128 == 0 and content[at + 64:at + 66] == size:
            return True
        at = content.find(needle, at + 1)
    return False


def _sniff_zip(content: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                info = archive.getinfo("mimetype")
                if info.file_size > 100:
                    return None
                declared = archive.read(info).decode("ascii", errors="replace").strip()
                return declared if declared in (ODT, ODS) else None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, NotImplementedError, RuntimeError,
            ValueError, EOFError, OSError):
        # not a readable archive (corrupt data; RuntimeError: an encrypted member): not an allowed type
        return None
    if "[Content_Types].xml" not in names:
        return None
    for media_type, folder in OOXML_PARTS:
        if any(n.startswith(folder) for n in names):
            return media_type
    return None


def sanitize_filename(name: str) -> str:
    """The name a document is stored and offered under: the last part of any path the client
    sent, without control or formatting characters (which includes the bidirectional
    overrides that make "invoice\u202efdp.exe" look like a PDF), NFC-normalised, at most
    `MAX_FILENAME_LENGTH` characters with its extension kept. Any other Unicode stays."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(" " if ch.isspace() else ch for ch in unicodedata.normalize("NFC", base)
                   if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    kept = " ".join(kept.split()).strip(" .")
    if len(kept) > MAX_FILENAME_LENGTH:
        stem, dot, ext = kept.rpartition(".")
        if dot and len(ext) <= 10:
            kept = stem[:MAX_FILENAME_LENGTH - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            kept = kept[:MAX_FILENAME_LENGTH]
    return kept


@dataclass(frozen=True)
class CheckedDocument:
    filename: str
    media_type: str


def check_document(*, filename: str, declared_type: str, content: bytes, max_bytes: int) -> CheckedDocument:
    """The document's safe name and its type as its content shows it; `InvalidInput` naming
    the part of the upload that is wrong (`file`, `file.content_type`, `file.filename`)."""
    if not content:
        raise InvalidInput(field="file", message="is empty")
    if len(content) > max_bytes:
        raise InvalidInput(field="file", message=f"is larger than {max_bytes // (1024 * 1024)} MiB")
    clean = sanitize_filename(filename)
    if not clean or clean.startswith("."):
        raise InvalidInput(field="file.filename", message="needs a file name, e.g. offer.pdf")
    actual = sniff(content)
    if actual is None:
        raise InvalidInput(field="file", message="is not an accepted document: PDF, PNG, JPEG, Word, Excel, PowerPoint "
                                                 "or OpenDocument text or spreadsheet (judged by its content)")
    declared = declared_type.split(";", 1)[0].strip().lower()
    declared = ALIASES.get(declared, declared)
    errors: list[tuple[str, str]] = []
    if declared not in UNDECLARED and declared != actual:
        errors.append(("file.content_type", f"declared as {declared!r}, but the content is {actual}"))
    if not clean.lower().endswith(EXTENSIONS[actual]):
        endings = " or ".join(EXTENSIONS[actual])
        errors.append(("file.filename", f"the content is {actual}: the name must end in {endings}"))
    if errors:
        raise InvalidInput(errors)
    return CheckedDocument(clean, actual)
