"""What an order's document may be: the shared rules (`kontor.attachments`: type judged by
its bytes, name made safe, the same for invoice drafts) and how many an order may have. Pure."""
from __future__ import annotations

from kontor.attachments import (  # noqa: F401 - the orders service's names for the shared rules
    ALIASES,
    ALLOWED_MEDIA_TYPES,
    DOC,
    DOCX,
    EXTENSIONS,
    JPEG,
    MAX_FILENAME_LENGTH,
    ODS,
    ODT,
    OLE2,
    PDF,
    PNG,
    PPT,
    PPTX,
    UNDECLARED,
    XLS,
    XLSX,
    CheckedDocument,
    check_document,
    sanitize_filename,
    sniff,
)

# Every event of an order lists its documents, and each is stored whole in the database.
MAX_PER_ORDER = 20
