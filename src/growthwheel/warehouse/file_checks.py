"""Whole-file problems of an import: each with a stable code and words in the reader's language.

Every file an import refuses as a whole (missing, empty, not text, not UTF-8, unreadable, of an
unknown type, not the shop export it claims to be) raises a :class:`FileProblem`: an
``ImportFileError`` with a stable ``code`` (the API's problem+json ``code``), a catalogue ``key``
(``web/i18n/<lang>/imports.json``) and its ``params`` — always ``file`` (the file's name, as the
client uploaded it once the import renames it), and ``row`` where the problem has one. ``message``
stays the English one-liner (``<file>: <reason>``) that logs and English clients read;
:meth:`GrowthwheelError.text` gives it in any language (the API in the client's
``Accept-Language``, the console in the page's language, the CLI in its own).

Encodings (a decision): a UTF-8 byte-order mark is simply skipped (every reader does so, and
header names lose any stray BOM). A generic file that is not UTF-8 is **refused**, never guessed:
GB18030 decodes almost any byte sequence, so a Latin-1 or Windows-1252 file from another shop
would "succeed" as Chinese mojibake and, imports being idempotent on ids, the wrong names would
stay. When the bytes do decode as GB18030 (the usual case: a Chinese Excel or shop-backend
export) the refusal says so, in the reader's language, and how to convert it (Excel "CSV UTF-8",
or ``iconv -f GB18030 -t UTF-8``). Taobao exports, known to be GBK, are decoded by their adapter.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from growthwheel.errors import ImportFileError
from growthwheel.keys import k

#: Opening bytes of files people upload by mistake: (magic, catalogue key of what it is, English).
NOT_TEXT = (
    (b"PK\x03\x04", k("import_file.not_text.zip"), "a ZIP archive or an Excel .xlsx workbook"),
    (b"\xd0\xcf\x11\xe0", k("import_file.not_text.xls"), "an Excel .xls workbook or another Office document"),
    (b"%PDF", k("import_file.not_text.pdf"), "a PDF document"),
    (b"\x89PNG", k("import_file.not_text.image"), "a PNG image"),
    (b"\xff\xd8\xff", k("import_file.not_text.image"), "a JPEG image"),
    (b"GIF8", k("import_file.not_text.image"), "a GIF image"),
    (b"\x1f\x8b", k("import_file.not_text.archive"), "a gzip archive"),
    (b"7z\xbc\xaf", k("import_file.not_text.archive"), "a 7-Zip archive"),
    (b"Rar!", k("import_file.not_text.archive"), "a RAR archive"),
)
#: What a reader that cannot parse a file says, by kind of file (with the line, when known).
UNREADABLE = {"csv": k("import_file.unreadable.csv"), "parquet": k("import_file.unreadable.parquet"),
              "json": k("import_file.unreadable.json")}
UNREADABLE_AT = {"csv": k("import_file.unreadable_at.csv"),
                 "parquet": k("import_file.unreadable_at.parquet"),
                 "json": k("import_file.unreadable_at.json")}
#: Bytes read to decide.
SNIFF_BYTES = 64 * 1024
BOM = b"\xef\xbb\xbf"
#: Suffixes of text files (CSV and JSON Lines) that are sniffed before they are read.
TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json"}


class FileProblem(ImportFileError):
    """A whole input file the import refuses; ``file`` is the path the error is about (as the
    import was given it), ``values`` what the message says besides the file (row …)."""

    def __init__(self, message: str, file: str | Path, key: str, *, row: int | None = None,
                 **values: object) -> None:
        super().__init__(message)
        self.file = str(file)
        self.key = key
        self.row = row
        shown = {name: str(value) for name, value in values.items()}
        if row is not None:
            shown["row"] = str(row)
            shown.setdefault("line", str(row + 1))  # the file's line, header included
        self.values = shown
        self.params = {"file": Path(self.file).name, **shown}


class FileNotFoundProblem(FileProblem):
    """An input file that does not exist."""

    code = "file_not_found"


class FileTypeProblem(FileProblem):
    """An input file of a type the format does not read (``.xlsx`` for the generic format)."""

    code = "file_type"


class EmptyFileError(FileProblem):
    """An input file with nothing in it (no header row)."""

    code = "file_empty"


class FileNotTextError(FileProblem):
    """An input file meant to be CSV or JSON Lines is binary (a workbook, an archive, an image)."""

    code = "file_not_text"


class FileNotUtf8Error(FileProblem):
    """A text file that is not UTF-8 (UTF-16, GBK, a BOM that lies)."""

    code = "file_not_utf8"


class UnreadableFileError(FileProblem):
    """A file its reader cannot parse (damaged Parquet, malformed JSON, CSV it cannot split)."""

    code = "file_unreadable"


class NotThisFormatError(FileProblem):
    """A file that is not the shop export its format reads (a Taobao import of another file)."""

    code = "file_format"


def renamed(exc: BaseException, rename: dict[str, str]) -> None:
    """Name the file of a :class:`FileProblem` (or any error with ``file`` / ``params``) as the
    client did: ``rename`` maps server paths to shown names."""
    file = getattr(exc, "file", None)
    if not isinstance(file, str):
        return
    shown = rename.get(file) or rename.get(str(Path(file).resolve()))
    if shown is None:
        return
    exc.file = shown  # type: ignore[attr-defined]
    params = getattr(exc, "params", None)
    if isinstance(params, dict) and "file" in params:
        params["file"] = Path(shown).name


def decoded_as_gb18030(data: bytes) -> bool:
    """Whether ``data`` (possibly cut mid-character at its end) decodes as GB18030 and holds
    Chinese characters: what a Chinese Excel or shop export saved as "CSV" looks like."""
    try:
        text = codecs.getincrementaldecoder("gb18030")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def check_text(path: Path, name: str, fmt: str) -> list[str]:
    """Refuse (naming the file as ``name``) a file that should be text and is not: an empty file,
    a binary file for any CSV or JSON input, and a file that is not UTF-8 for the generic format
    (shop exports may be GBK). Parquet files are left to the Parquet reader, once not empty.

    Returns the notices about a file that is fine but holds nothing to import: ``["header_only"]``
    for a CSV file with its header row and no data row.
    """
    suffix = path.suffix.lower()
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    whole = len(head) < SNIFF_BYTES
    if not head.strip() or (whole and not head.removeprefix(BOM).strip()):
        raise EmptyFileError(f"{name}: the file is empty (no header row, no data)", name,
                             k("import_file.empty"))
    if fmt == "generic" and suffix not in TEXT_SUFFIXES:
        return []
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text"
        raise FileNotUtf8Error(f"{name}: not UTF-8 text (it is UTF-16); save it as CSV UTF-8", name,
                               k("import_file.utf16"))
    for magic, key, what in NOT_TEXT:
        if head.startswith(magic):
            raise FileNotTextError(
                f"{name}: not a text file ({what}); save it as CSV (UTF-8) and upload that", name, key)
    if b"\x00" in head:
        raise FileNotTextError(
            f"{name}: not a text file (binary content); save it as CSV (UTF-8) and upload that", name,
            k("import_file.not_text.binary"))
    notices = _header_only(head, suffix) if whole else []
    if fmt != "generic":
        return notices
    has_bom = head.startswith(BOM)
    body = head[len(BOM):] if has_bom else head
    try:
        codecs.getincrementaldecoder("utf-8")().decode(body, final=whole)
    except UnicodeDecodeError as exc:
        row = body[: exc.start].count(b"\n")  # the header is line 1, data row 1 is line 2
        if has_bom:
            raise FileNotUtf8Error(
                f"{name}: starts with a UTF-8 byte-order mark but is not UTF-8 (first at row {row}); "
                "save it again as CSV UTF-8", name, k("import_file.bom_lies"), row=row) from None
        if decoded_as_gb18030(body):
            raise FileNotUtf8Error(
                f"{name}: not UTF-8 text (first at row {row}), it looks like GBK/GB18030; save it as "
                "CSV UTF-8 (iconv -f GB18030 -t UTF-8), or import a Taobao export (GBK) with "
                "--format taobao", name, k("import_file.gbk"), row=row) from None
        raise FileNotUtf8Error(
            f"{name}: not UTF-8 text (first at row {row}); save it as UTF-8, "
            "or import a Taobao export (GBK) with --format taobao", name, k("import_file.not_utf8"),
            row=row) from None
    return notices


def _header_only(head: bytes, suffix: str) -> list[str]:
    """``["header_only"]`` for a whole CSV file with one non-blank line (its header)."""
    if suffix not in {".csv", ".tsv", ".txt"}:
        return []
    lines = [line for line in head.removeprefix(BOM).splitlines() if line.strip()]
    return ["header_only"] if len(lines) == 1 else []
