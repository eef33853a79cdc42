"""The corpus side of bulk encoding: which files, in which format, and their rows as (id, text) parts.

Pure Python and pyarrow: no Ray, no TensorFlow. Rows are numbered from 0 in file order; a row's default
id is ``<path relative to the inputs' common folder>:<row>``, stable across runs of the same command.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass, field

FORMATS = {'.txt': 'text', '.text': 'text', '.jsonl': 'jsonl', '.ndjson': 'jsonl', '.csv': 'csv',
           '.parquet': 'parquet', '.pq': 'parquet'}


class BadInputError(ValueError):
    """Input the command cannot encode; the message names the file and, where it applies, the row."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message  # as said: Ray Data appends its retry advice to ``args`` on the way back

    def __reduce__(self):
        return type(self), (self.message,)


@dataclass(frozen=True)
class InputFile:
    """One input file: where it is, its name in ids and part names, and how to read it."""
    path: str
    name: str       # path relative to the inputs' common folder
    format: str

    @property
    def key(self) -> str:
        """A file-name-safe, unique stem for this input's parts."""
        safe = ''.join(c if c.isalnum() or c in '-_.' else '_' for c in self.name)[-60:]
        return f'{safe}-{hashlib.sha1(self.name.encode()).hexdigest()[:10]}'


@dataclass
class FileRows:
    """The rows of one file: ids and texts of the good rows, and the bad ones as ``{row, reason}``."""
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)   # each good row's number in the file
    skipped: list[dict] = field(default_factory=list)
    total: int = 0                                  # rows in the file, good and bad


def find_inputs(patterns: list[str], input_format: str | None) -> list[InputFile]:
    """Expand paths and globs into files (sorted, no duplicates); BadInputError when one matches nothing."""
    paths = []
    for pattern in patterns:
        matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not matches:
            raise BadInputError(f'-input {pattern}: no such file')
        paths.extend(os.path.abspath(p) for p in matches)
    paths = list(dict.fromkeys(paths))
    root = os.path.commonpath([os.path.dirname(p) for p in paths])
    return [InputFile(p, os.path.relpath(p, root), input_format or _format_of(p)) for p in paths]


def _format_of(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise BadInputError(f'{path}: cannot tell the format from the suffix {suffix!r}; '
                            f'pass -input_format text|jsonl|csv|parquet')
    return FORMATS[suffix]


def read_rows(source: InputFile, text_column: str, id_column: str | None, skip_bad_rows: bool) -> FileRows:
    """Every row of ``source``; a bad text raises BadInputError naming file and row, unless skip_bad_rows."""
    try:
        columns = _READERS[source.format](source.path, text_column, id_column)
    except BadInputError:
        raise
    except (OSError, ValueError) as error:  # unreadable, undecodable, malformed: say where
        raise BadInputError(f'{source.path}: cannot read it as {source.format}: {error}') from None
    texts, ids = columns
    rows = FileRows(total=len(texts))
    for row, text in enumerate(texts):
        reason = _text_problem(text)
        if reason:
            if not skip_bad_rows:
                raise BadInputError(f'{source.path}: row {row}{_line(source, row)}: {reason} '
                                    f'(column {text_column!r}; -skip_bad_rows skips such rows)')
            rows.skipped.append({'row': row, 'reason': reason})
            continue
        rows.ids.append(f'{source.name}:{row}' if ids is None else str(ids[row]))
        rows.texts.append(text)
        rows.rows.append(row)
    return rows


def _line(source: InputFile, row: int) -> str:
    return f' (line {row + 1})' if source.format in ('text', 'jsonl') else ''


def _text_problem(text) -> str | None:
    if not isinstance(text, str):
        return f'the text is {"missing" if text is None else type(text).__name__}, not a string'
    if not text.strip():
        return 'the text is empty'
    return None


def _read_text(path: str, text_column: str, id_column: str | None):
    if id_column:
        raise BadInputError(f'{path}: -id_column {id_column!r} needs a format with columns, not text')
    with open(path, encoding='utf-8', newline='') as f:
        lines = f.read().split('\n')  # only \n ends a line: a stray \r stays inside its sentence
    if lines[-1] == '':
        lines.pop()
    return [line.removesuffix('\r') for line in lines], None


def _read_jsonl(path: str, text_column: str, id_column: str | None):
    texts, ids = [], [] if id_column else None
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise BadInputError(f'{path}: line {number}: not JSON ({error})') from None
            if not isinstance(record, dict):
                raise BadInputError(f'{path}: line {number}: a JSON object is needed, not {type(record).__name__}')
            texts.append(record.get(text_column))
            if id_column:
                if id_column not in record:
                    raise BadInputError(f'{path}: line {number}: no key {id_column!r} (-id_column)')
                ids.append(record[id_column])
    return texts, ids


def _read_table(path: str, table, text_column: str, id_column: str | None):
    for option, column in (('-text_column', text_column), ('-id_column', id_column)):
        if column and column not in table.column_names:
            raise BadInputError(f'{path}: no column {column!r} ({option}); it has {table.column_names}')
    return table.column(text_column).to_pylist(), table.column(id_column).to_pylist() if id_column else None


def _read_csv(path: str, text_column: str, id_column: str | None):
    import pyarrow
    from pyarrow import csv

    # Every column as a string: the text stays text, and ids such as 007 keep their zeros.
    types = {name: pyarrow.string() for name in _csv_header(path)}
    options = csv.ConvertOptions(column_types=types, strings_can_be_null=False)
    return _read_table(path, csv.read_csv(path, convert_options=options), text_column, id_column)


def _csv_header(path: str) -> list[str]:
    import csv as python_csv

    with open(path, encoding='utf-8', newline='') as f:
        return next(python_csv.reader(f), [])


def _read_parquet(path: str, text_column: str, id_column: str | None):
    from pyarrow import parquet

    names = parquet.read_schema(path).names
    wanted = [c for c in (text_column, id_column) if c and c in names]
    return _read_table(path, parquet.read_table(path, columns=wanted), text_column, id_column)


_READERS = {'text': _read_text, 'jsonl': _read_jsonl, 'csv': _read_csv, 'parquet': _read_parquet}
