"""Raw files -> one all-text staging table per file, with canonical column names and lineage.

Every value stays the string it was in the file, so the quarantine can show the original row. Problems are
kept with the rows they belong to (`_load_errors`), never raised for one file's sake: a malformed line, a file
without a required column or a file in another encoding still yields rows that can be traced and counted.
Only a file that holds no readable table at all (binary, unreadable) is rejected as a whole.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from enrollment_platform.config import DatasetSpec
from enrollment_platform.transforms.sql import quote_ident, quote_literal

SUPPORTED_SUFFIXES = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
}
LINEAGE_COLUMNS = ("_source_file", "_source_row", "_raw_line", "_load_errors")
_SNIFF_BYTES = 64 * 1024
_CHUNK_BYTES = 1 << 20  # the UTF-8 check and the UTF-8 copy read files in chunks of this size


@dataclass
class FileReport:
    """What reading one raw file found; kept in the inventory and shown as asset metadata."""

    path: str
    format: str
    size_bytes: int
    rows: int = 0
    rejected_lines: int = 0
    encoding: str = "utf-8"
    status: str = "ok"  # ok | warning | rejected
    messages: list[str] = field(default_factory=list)
    unmapped_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class UnreadableFile(Exception):
    """The file holds no table we can read; the whole file is rejected with this reason."""


def file_fingerprint(path: Path) -> str:
    """A cheap identity of a raw file's content: path, size and modification time."""
    stat = path.stat()
    return hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]


def sniff_encoding(path: Path) -> str:
    """'utf-8' or 'latin-1'; raises UnreadableFile for binary content (NUL bytes)."""
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
        if b"\x00" in head:
            raise UnreadableFile("binary content (NUL bytes): not a text table")
        decoder_ok = True
        try:
            _validate_utf8(handle, head)
        except UnicodeDecodeError:
            decoder_ok = False
    return "utf-8" if decoder_ok else "latin-1"


def _validate_utf8(handle, head: bytes) -> None:
    """Raises UnicodeDecodeError unless the whole file is UTF-8. A plain ASCII chunk (most of them) is valid as
    it is, so it is decoded only when a multi-byte sequence is open: the ASCII test is about ten times cheaper
    than decoding, and decoding every chunk held the GIL for about 2 s of a 10 M-row raw step."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    chunk = head
    while chunk:
        if not (chunk.isascii() and decoder.getstate()[0] == b""):
            decoder.decode(chunk)
        chunk = handle.read(_CHUNK_BYTES)
    decoder.decode(b"", final=True)


def stage_raw_file(
    con: duckdb.DuckDBPyConnection, path: Path, relative: str, spec: DatasetSpec, out_path: Path
) -> FileReport:
    """Read one raw file into `out_path` (Parquet) with canonical columns, all VARCHAR, plus lineage."""
    fmt = SUPPORTED_SUFFIXES[path.suffix.lower()]
    report = FileReport(path=relative, format=fmt, size_bytes=path.stat().st_size)
    try:
        if report.size_bytes == 0:
            report.status, report.messages = "warning", ["empty file: no header and no rows"]
            _write_empty(con, spec, out_path)
            return report
        if fmt == "parquet":
            source = _parquet_source(path)
        else:
            report.encoding = sniff_encoding(path)
            if report.encoding != "utf-8":
                report.messages.append("not valid UTF-8: read as latin-1 (check the special characters)")
            source = _csv_source(con, path, report) if fmt == "csv" else _json_source(con, path, report)
        select = _canonical_select(con, source, spec, relative, report)
        con.execute(f"COPY ({select}) TO {quote_literal(str(out_path))} (FORMAT parquet)")
        if fmt == "csv":
            _add_rejected_csv_lines(con, spec, relative, report, out_path)
        report.rows = con.execute(f"SELECT count(*) FROM read_parquet({quote_literal(str(out_path))})").fetchone()[0]
    except (UnreadableFile, duckdb.Error) as error:
        report.status = "rejected"
        report.messages.append(_first_line(str(error)))
        _write_empty(con, spec, out_path)
        report.rows = 0
    if report.messages and report.status == "ok":
        report.status = "warning"
    return report


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "unreadable file"


def _parquet_source(path: Path) -> str:
    source = f"read_parquet({quote_literal(str(path))}, hive_partitioning = false)"  # ingest_date= is not data
    return f"(SELECT * EXCLUDE (ordinality), ordinality AS _source_row FROM {source} WITH ORDINALITY)"


def _csv_source(con: duckdb.DuckDBPyConnection, path: Path, report: FileReport) -> str:
    """DuckDB's CSV reader over the file, streamed straight into the staged file; the lines it rejects are added
    afterwards (`_add_rejected_csv_lines`)."""
    literal = quote_literal(str(path))
    # store_rejects also in the sniff: it changes what the sniffer takes for the header of a ragged file
    options = f"all_varchar=true, header=true, store_rejects=true, encoding={quote_literal(report.encoding)}"
    dialect = _sniffed_dialect(con, literal, options)
    con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    # Rows are numbered by a streaming window, which DuckDB runs in the reader's order (a fixed-order operator)
    # whatever the thread count; WITH ORDINALITY numbered them the same at about a sixth more of a file's staging.
    return (
        f"(SELECT *, row_number() OVER () AS _source_row "
        f"FROM read_csv({literal}, {options}{dialect}, hive_partitioning=false))"
    )


_SNIFFED_NOTHING = "(empty)"  # how sniff_csv reports no quote, escape or comment character


def _sniffed_dialect(con: duckdb.DuckDBPyConnection, literal: str, options: str) -> str:
    """What DuckDB's sniffer finds (delimiter, quoting, header columns) as read_csv options with auto-detection
    off, so the file is sniffed once, not once to name its columns and again by the read (an eighth of a file's
    staging time). Where `sniff_csv` refuses a file that `read_csv` still reads (it is stricter about the
    header), nothing: the read detects the dialect itself, as it always did."""
    try:
        delimiter, quote, escape, new_line, comment, skip, columns = con.execute(
            "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, Columns "
            f"FROM sniff_csv({literal}, {options})"
        ).fetchall()[0]
    except duckdb.Error:
        return ""
    characters = {"delim": delimiter, "quote": quote, "escape": escape, "comment": comment, "new_line": new_line}
    given = ", ".join(f"{name}={quote_literal('' if v == _SNIFFED_NOTHING else v)}" for name, v in characters.items())
    names = ", ".join(f"{quote_literal(c['name'])}: 'VARCHAR'" for c in columns)
    return f", auto_detect=false, {given}, skip={int(skip)}, columns={{{names}}}"


def _add_rejected_csv_lines(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, relative: str, report: FileReport, out_path: Path
) -> None:
    """The lines the CSV reader rejected (kept as `_raw_line` with the reason), appended to the staged file. Rare:
    the file is rewritten only when there are some."""
    rejected = con.execute(
        "SELECT line, any_value(error_type), string_agg(DISTINCT error_message, '; '), any_value(csv_line) "
        "FROM reject_errors GROUP BY line ORDER BY line"
    ).fetchall()
    report.rejected_lines = len(rejected)
    if not rejected:
        return
    report.messages.append(f"{len(rejected)} malformed line(s) quarantined (e.g. line {rejected[0][0]})")
    _create_rejected(con, [(line, f"malformed CSV line {line}: {message}", raw) for line, _, message, raw in rejected])
    combined = out_path.with_name(f".{out_path.name}.with_rejects.tmp")
    parsed = f"SELECT * FROM read_parquet({quote_literal(str(out_path))})"
    con.execute(
        f"COPY ({parsed} UNION ALL {_rejected_select(spec, relative)}) TO {quote_literal(str(combined))} "
        "(FORMAT parquet)"
    )
    os.replace(combined, out_path)


def _json_source(con: duckdb.DuckDBPyConnection, path: Path, report: FileReport) -> str:
    """JSON lines, one object per line, parsed by DuckDB (the file never becomes Python objects: at 10 M
    enrollments the students' 24 MB of JSON lines took 1.2 s in Python, holding the GIL). A line that is not a
    JSON object is kept as a rejected line; blank lines are skipped. Values become text as JSON wrote them:
    strings unquoted, numbers as written (a fraction as its shortest decimal, like Python's repr), true/false,
    nested arrays and objects as their JSON. Lines end at a line feed (a carriage return before it is dropped).
    """
    source = _utf8_copy(path, report.encoding)
    try:
        _read_json_lines(con, source)
    finally:
        if source != path:
            source.unlink(missing_ok=True)
    keys = [row[0] for row in con.execute(_JSON_KEYS).fetchall()]
    values = [f"{_json_text(f'v[{i}]')} AS {quote_ident(key)}" for i, key in enumerate(keys, start=1)]
    pointers = "[" + ", ".join(quote_literal("/" + k.replace("~", "~0").replace("/", "~1")) for k in keys) + "]"
    extracted = f"json_extract(line, {pointers})" if keys else "[]::JSON[]"  # each line parsed once
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _parsed AS SELECT {', '.join([*values, 'n AS _source_row'])} "
        f"FROM (SELECT n, {extracted} AS v FROM _json_lines WHERE is_object)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rejected AS SELECT n AS line, CASE WHEN is_json "
        "THEN 'JSON line ' || n || ' is not an object' ELSE 'malformed JSON line ' || n || ': not valid JSON' END "
        "AS reason, line AS raw_line FROM _json_lines WHERE NOT is_object ORDER BY n"
    )
    report.rejected_lines, first = con.execute("SELECT count(*), min(line) FROM _rejected").fetchone()
    if report.rejected_lines:
        report.messages.append(f"{report.rejected_lines} malformed line(s) quarantined (e.g. line {first})")
    return "_parsed"


# The keys of the objects, in the order they first appear (line, then place in the line).
_JSON_KEYS = (
    "SELECT key FROM (SELECT n, unnest(json_keys(line)) AS key, unnest(range(len(json_keys(line)))) AS place "
    "FROM _json_lines WHERE is_object) GROUP BY key ORDER BY min(struct_pack(n := n, place := place))"
)


def _read_json_lines(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """`_json_lines`: every non-blank line of the file with its number, whether it is JSON and an object."""
    split = "string_split(content, chr(10))"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _json_lines AS "
        "SELECT n, line, is_json, CASE WHEN is_json THEN json_type(line) = 'OBJECT' ELSE false END AS is_object "
        "FROM ("  # CASE, not AND: json_type raises on text that is not JSON
        "  SELECT n, line, coalesce(json_valid(line), false) AS is_json FROM ("
        "    SELECT n, CASE WHEN ends_with(line, chr(13)) THEN line[:-2] ELSE line END AS line FROM ("
        f"      SELECT unnest({split}) AS line, unnest(range(1, len({split}) + 1)) AS n "
        f"      FROM read_text({quote_literal(str(path))})"
        "    )"
        "  ) WHERE NOT regexp_full_match(line, '\\s*')"
        ")"
    )


def _json_text(value: str) -> str:
    """The text of a JSON value (NULL for null or absent): strings unquoted, fractions as their shortest decimal."""
    return (
        f"CASE json_type({value}) WHEN 'VARCHAR' THEN json_extract_string({value}, '$') "
        f"WHEN 'DOUBLE' THEN CAST(CAST({value} AS DOUBLE) AS VARCHAR) WHEN 'NULL' THEN NULL "
        f"ELSE CAST({value} AS VARCHAR) END"
    )


def _utf8_copy(path: Path, encoding: str) -> Path:
    """`path` itself when it is UTF-8, else a temporary UTF-8 copy (DuckDB reads text as UTF-8), made in chunks."""
    if encoding == "utf-8":
        return path
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
        target = Path(handle.name)
    with path.open("r", encoding=encoding, newline="") as source, target.open("w", encoding="utf-8", newline="") as out:
        while chunk := source.read(_CHUNK_BYTES):
            out.write(chunk)
    return target


def _create_table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Materialize an Arrow table as a temp table (bulk, not row by row)."""
    con.register("_arrow_rows", table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _arrow_rows")
    finally:
        con.unregister("_arrow_rows")


def _create_rejected(con: duckdb.DuckDBPyConnection, rejected: list[tuple[int, str, str]]) -> None:
    """The lines a reader could not parse: line number, reason, original text."""
    _create_table(
        con,
        "_rejected",
        pa.table(
            {
                "line": pa.array([r[0] for r in rejected], pa.int64()),
                "reason": pa.array([r[1] for r in rejected], pa.string()),
                "raw_line": pa.array([r[2] for r in rejected], pa.string()),
            }
        ),
    )


def _canonical_select(
    con: duckdb.DuckDBPyConnection, source: str, spec: DatasetSpec, relative: str, report: FileReport
) -> str:
    """SELECT mapping the source's headers to canonical names, with lineage and per-row load errors."""
    headers = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall() if row[0] != "_source_row"]
    mapped: dict[str, str] = {}
    for header in headers:
        canonical = spec.canonical_name(header)
        if canonical is None:
            report.unmapped_columns.append(header)
        elif canonical in mapped:
            report.messages.append(f"columns {mapped[canonical]!r} and {header!r} both map to {canonical!r}")
        else:
            mapped[canonical] = header
    if report.unmapped_columns:
        report.messages.append(f"columns not in the canonical schema, not loaded: {report.unmapped_columns}")
    missing = [c for c in spec.required_columns if c not in mapped]
    file_errors = [_missing_column_reason(spec, column) for column in missing]
    if file_errors:
        report.messages.extend(file_errors)
    values = [
        f"CAST({quote_ident(mapped[c])} AS VARCHAR) AS {quote_ident(c)}" if c in mapped else f"NULL::VARCHAR AS {c}"
        for c in spec.columns
    ]
    errors_literal = "[" + ", ".join(quote_literal(e) for e in file_errors) + "]::VARCHAR[]"
    parsed = (
        f"SELECT {', '.join(values)}, {quote_literal(relative)} AS _source_file, _source_row::BIGINT AS _source_row, "
        f"NULL::VARCHAR AS _raw_line, {errors_literal} AS _load_errors FROM {source}"
    )
    if source != "_parsed":
        return parsed
    return f"{parsed} UNION ALL {_rejected_select(spec, relative)}"


def _rejected_select(spec: DatasetSpec, relative: str) -> str:
    """The rejected lines (`_rejected`) as staged rows: no values, the line's text and the reason."""
    nulls = ", ".join(f"NULL::VARCHAR AS {quote_ident(c)}" for c in spec.columns)
    return f"SELECT {nulls}, {quote_literal(relative)}, line, raw_line, [reason]::VARCHAR[] FROM _rejected"


def _missing_column_reason(spec: DatasetSpec, column: str) -> str:
    names = ", ".join((column, *spec.columns[column].aliases))
    return f"file has no required column {column!r} (looked for: {names})"


def _write_empty(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, out_path: Path) -> None:
    columns = ", ".join(f"NULL::VARCHAR AS {quote_ident(c)}" for c in spec.columns)
    con.execute(
        f"COPY (SELECT {columns}, NULL::VARCHAR AS _source_file, NULL::BIGINT AS _source_row, "
        f"NULL::VARCHAR AS _raw_line, NULL::VARCHAR[] AS _load_errors LIMIT 0) "
        f"TO {quote_literal(str(out_path))} (FORMAT parquet)"
    )
