"""Reading uploaded tables as a stream of rows: CSV in any common encoding and delimiter,
and XLSX (openpyxl in read-only mode), plus column-mapping suggestions from headers in
English, Portuguese, German, Russian and Hindi."""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from charset_normalizer import from_bytes

FIELDS = (
    "first_name",
    "last_name",
    "name",
    "email",
    "phone",
    "country",
    "city",
    "street",
    "postal_code",
    "birthday",
    "tags",
    "language",
    "lifecycle_stage",
)

# Header words per field (folded: lower case, no accents, no spaces or punctuation).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "first_name": (
        "firstname",
        "givenname",
        "forename",
        "first",
        "nome",
        "primeironome",
        "vorname",
        "имя",
        "पहलानाम",
        "नाम",
    ),
    "last_name": (
        "lastname",
        "surname",
        "familyname",
        "last",
        "sobrenome",
        "apelido",
        "ultimonome",
        "nachname",
        "familienname",
        "фамилия",
        "उपनाम",
        "अंतिमनाम",
    ),
    "name": (
        "name",
        "fullname",
        "contact",
        "contactname",
        "nomecompleto",
        "vollstandigername",
        "fio",
        "фио",
        "полноеимя",
        "पूरानाम",
    ),
    "email": (
        "email",
        "emailaddress",
        "mail",
        "e-mail",
        "correio",
        "correioeletronico",
        "emailadresse",
        "почта",
        "электроннаяпочта",
        "элпочта",
        "эпочта",
        "емайл",
        "емейл",
        "ईमेल",
        "ईमेलपता",
    ),
    "phone": (
        "phone",
        "phonenumber",
        "telephone",
        "tel",
        "mobile",
        "cell",
        "telefone",
        "celular",
        "telefon",
        "handy",
        "mobiltelefon",
        "rufnummer",
        "телефон",
        "мобильный",
        "тел",
        "फोन",
        "मोबाइल",
        "फ़ोन",
        "दूरभाष",
    ),
    "country": ("country", "pais", "land", "staat", "страна", "देश"),
    "city": ("city", "town", "cidade", "stadt", "ort", "город", "शहर", "नगर"),
    "street": (
        "street",
        "address",
        "rua",
        "endereco",
        "strasse",
        "adresse",
        "улица",
        "адрес",
        "पता",
        "गली",
    ),
    "postal_code": (
        "zip",
        "zipcode",
        "postalcode",
        "postcode",
        "cep",
        "plz",
        "postleitzahl",
        "индекс",
        "почтовыйиндекс",
        "पिनकोड",
        "पिन",
    ),
    "birthday": (
        "birthday",
        "birthdate",
        "dateofbirth",
        "dob",
        "aniversario",
        "datadenascimento",
        "geburtstag",
        "geburtsdatum",
        "деньрождения",
        "датарождения",
        "जन्मदिन",
        "जन्मतिथि",
    ),
    "tags": ("tags", "tag", "labels", "etiquetas", "schlagworter", "теги", "метки", "टैग"),
    "language": ("language", "lang", "idioma", "lingua", "sprache", "язык", "भाषा"),
    "lifecycle_stage": (
        "lifecyclestage",
        "stage",
        "status",
        "estagio",
        "phase",
        "стадия",
        "статус",
        "चरण",
    ),
}


def fold(header: str) -> str:
    text = unicodedata.normalize("NFKD", header.strip().lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch) or ord(ch) > 0x900)
    text = unicodedata.normalize("NFC", text)
    # Russian yo is often written as ie.
    return re.sub(r"[\s_\-\.:/()#*]+", "", text).replace("\u0451", "\u0435")


_LOOKUP = {fold(word): field for field, words in SYNONYMS.items() for word in words}


def suggest(headers: list[str]) -> dict[str, str]:
    """Column -> field for each header that names one; each field is used once."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        field = _LOOKUP.get(fold(header), "")
        if field and field not in taken:
            taken.add(field)
            mapping[header] = field
        else:
            mapping[header] = ""
    return mapping


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) when it decodes; otherwise the best guess."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(sample, cp_isolation=None).best()
    encoding = best.encoding if best is not None else "cp1252"
    return "cp1251" if encoding in ("windows_1251", "cp1251") else str(encoding)


def detect_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        header = lines[0] if lines else ""
        return max(",;\t|", key=header.count)


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def inspect_csv(path: Path) -> tuple[str, str, list[str]]:
    with path.open("rb") as handle:
        sample = handle.read(256 * 1024)
    encoding = detect_encoding(sample)
    text = sample.decode(encoding, errors="ignore")
    delimiter = detect_delimiter(text)
    headers = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    return encoding, delimiter, [h.strip() for h in headers]


class Refused(ValueError):
    """The file cannot be imported safely; the message says why, for the user."""


# A contact file has tens of columns; a line or row far past these is an attack on the
# reader's memory (the csv module builds a whole row as a list before anyone can look at
# it: a 100 MB line of "a," is fifty million strings), refused at upload.
MAX_LINE_CHARS = 1024 * 1024
MAX_COLUMNS = 1000


def _bounded_lines(handle: TextIO) -> Iterator[str]:
    """The file's lines, refusing one longer than MAX_LINE_CHARS before it is read whole."""
    number = 0
    while line := handle.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise Refused(f"line {number} is longer than {MAX_LINE_CHARS // 1024 // 1024} MiB")
        yield line


def _bounded_rows(handle: TextIO, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every row, refusing a row of more than MAX_COLUMNS."""
    reader = csv.reader(_bounded_lines(handle), delimiter=delimiter)
    for cells in reader:
        if len(cells) > MAX_COLUMNS:
            raise Refused(f"row {reader.line_num} has {len(cells)} columns; at most {MAX_COLUMNS}")
        yield reader.line_num, cells


def check_csv(path: Path, encoding: str, delimiter: str) -> None:
    """Reads the whole file once, so a row the reader cannot take (a field over the csv
    module's limit of 128 KiB, a line over MAX_LINE_CHARS, more than MAX_COLUMNS) is
    refused at upload rather than failing the import later."""
    limit = csv.field_size_limit()
    with path.open("r", encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(_bounded_lines(handle), delimiter=delimiter)
        try:
            for cells in reader:
                if len(cells) > MAX_COLUMNS:
                    raise Refused(
                        f"row {reader.line_num} has {len(cells)} columns; at most {MAX_COLUMNS}"
                    )
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise Refused(
                    f"row {reader.line_num}: a field is longer than {limit // 1024} KiB"
                ) from exc
            raise Refused(f"row {reader.line_num}: {exc}") from exc


@dataclass(frozen=True)
class XlsxLimits:
    """How far an uploaded workbook may expand. openpyxl reads worksheets as a stream but
    loads every other part (the shared-strings table, styles) whole, even read-only, so a
    small file whose shared strings expand to a gigabyte would take that much memory."""

    max_parts: int = 1000
    max_sheet_bytes: int = 512 * 1024 * 1024
    max_other_bytes: int = 32 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024


def check_xlsx(path: Path, limits: XlsxLimits) -> None:
    """Refuses a workbook whose parts would expand past `limits`, before openpyxl opens it:
    first by the sizes the ZIP directory declares, then by the bytes really inflated
    (streamed, so a directory that lies costs no memory; zipfile also stops at the declared
    size and checks the CRC)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Refused("not an XLSX workbook (not a ZIP archive)") from exc
    with archive:
        parts = archive.infolist()
        if len(parts) > limits.max_parts:
            raise Refused(f"the workbook has {len(parts)} parts; at most {limits.max_parts}")

        def bound(part: zipfile.ZipInfo) -> int:
            sheet = part.filename.startswith("xl/worksheets/")
            return limits.max_sheet_bytes if sheet else limits.max_other_bytes

        declared = 0
        for part in parts:
            declared += part.file_size
            if part.file_size > bound(part) or declared > limits.max_total_bytes:
                raise Refused(_too_large(part.filename, bound(part), limits))
        total = 0
        for part in parts:
            size = 0
            tail = b""
            try:
                with archive.open(part) as stream:
                    while chunk := stream.read(1024 * 1024):
                        size += len(chunk)
                        total += len(chunk)
                        if size > bound(part) or total > limits.max_total_bytes:
                            raise Refused(_too_large(part.filename, bound(part), limits))
                        # Spreadsheets never declare a DTD: one is there for entities
                        # (a file of the server's, or a "billion laughs" expansion).
                        if b"<!DOCTYPE" in tail + chunk or b"<!ENTITY" in tail + chunk:
                            raise Refused(
                                f"the workbook declares a DTD or XML entities ({part.filename})"
                                ", which no spreadsheet program writes"
                            )
                        tail = chunk[-16:]
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise Refused(f"the workbook is damaged ({part.filename}: {exc})") from exc


def _too_large(part: str, bound: int, limits: XlsxLimits) -> str:
    mib = 1024 * 1024
    return (
        f"the workbook expands too far: its part {part} may hold at most {bound // mib} MiB "
        f"and the whole workbook {limits.max_total_bytes // mib} MiB once uncompressed"
    )


def inspect_xlsx(path: Path) -> list[str]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(max_row=1, values_only=True):
            return [cell_text(v) for v in row]
        return []
    finally:
        workbook.close()


def iter_rows(
    path: Path, file_format: str, encoding: str, delimiter: str
) -> Iterator[tuple[int, list[str]]]:
    """(row number as a spreadsheet shows it, cells) for every data row, streamed."""
    if file_format == "xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            for number, row in enumerate(workbook.worksheets[0].iter_rows(values_only=True), 1):
                if number == 1:
                    continue
                cells = [cell_text(v) for v in row]
                if any(cells):
                    yield number, cells
        finally:
            workbook.close()
        return
    with path.open("r", encoding=encoding, errors="replace", newline="") as handle:
        rows = _bounded_rows(handle, delimiter)
        next(rows, None)
        for number, cells in rows:
            if any(c.strip() for c in cells):
                yield number, [c.strip() for c in cells]
