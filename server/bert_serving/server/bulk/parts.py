"""The output side of bulk encoding: part files, written atomically, and the final exactly-once check.

Part ``k`` of an input holds its rows ``k * rows_per_part`` up to the next part's first row (bad rows
skipped), in ``part-<input key>-<k>.parquet``. A part is written to a temporary name and renamed when
complete, so a part file that exists is whole, and writing it again (a retried task) changes nothing.
Each part carries a description of itself in the Parquet key-value metadata under ``bert_serving``.
"""
from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .inputs import FileRows, InputFile

METADATA_KEY = b'bert_serving'
PART_PREFIX = 'part-'
TEMP_PREFIX = '.tmp-'


class IncompleteOutputError(RuntimeError):
    """The output does not hold every input row exactly once; the message says what is wrong."""


def part_name(source: InputFile, index: int) -> str:
    return f'{PART_PREFIX}{source.key}-{index:05d}.parquet'


def plan_parts(source: InputFile, rows: FileRows, rows_per_part: int, done: set[str]) -> list[dict]:
    """The parts of one file not yet in ``done``, each a dict of its rows and its description."""
    count = max(1, -(-rows.total // rows_per_part))  # an empty file still gets a part: its proof of completion
    bounds = np.searchsorted(rows.rows, [k * rows_per_part for k in range(count + 1)])
    skipped = iter(sorted(rows.skipped, key=lambda bad: bad['row']))
    pending, bad = [], next(skipped, None)
    for index in range(count):
        first, end = index * rows_per_part, min((index + 1) * rows_per_part, rows.total)
        part_bad = []
        while bad is not None and bad['row'] < end:
            part_bad.append(bad)
            bad = next(skipped, None)
        if part_name(source, index) in done:
            continue
        good = slice(bounds[index], bounds[index + 1])
        info = {'path': source.path, 'source': source.name, 'index': index, 'first_row': first, 'end_row': end,
                'file_rows': rows.total, 'rows': int(good.stop - good.start), 'skipped': part_bad}
        pending.append({'name': part_name(source, index), 'ids': rows.ids[good], 'texts': rows.texts[good],
                        'info': json.dumps(info)})
    return pending


def write_part(output_dir: str, name: str, ids: list[str], texts: list[str] | None, vectors: np.ndarray,
               info: dict) -> None:
    """Write one part under a temporary name, then rename it into place."""
    import pyarrow
    from pyarrow import parquet

    dim = vectors.shape[1]
    columns = {'id': pyarrow.array(ids, pyarrow.string())}
    if texts is not None:
        columns['text'] = pyarrow.array(texts, pyarrow.string())
    flat = pyarrow.array(vectors.astype(np.float32, copy=False).reshape(-1), pyarrow.float32())
    columns['embedding'] = pyarrow.FixedSizeListArray.from_arrays(flat, dim)
    table = pyarrow.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps({**info, 'dim': dim})})
    temporary = os.path.join(output_dir, f'{TEMP_PREFIX}{uuid.uuid4().hex}-{name}')
    parquet.write_table(table, temporary)
    os.replace(temporary, os.path.join(output_dir, name))


def read_part_info(path: str) -> dict | None:
    """A part's description plus its row count in the file; None when it is not a readable part."""
    from pyarrow import parquet

    try:
        metadata = parquet.read_metadata(path)
        info = json.loads(metadata.metadata[METADATA_KEY])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {**info, 'rows_in_file': metadata.num_rows}


def scan_parts(output_dir: str) -> dict[str, dict]:
    """Every complete part in ``output_dir`` by name; leftovers of interrupted writes are removed."""
    parts = {}
    for name in sorted(os.listdir(output_dir)):
        path = os.path.join(output_dir, name)
        if name.startswith(TEMP_PREFIX):
            os.remove(path)
        elif name.startswith(PART_PREFIX) and name.endswith('.parquet'):
            info = read_part_info(path)
            if info is None:  # cut short by something other than us (a full disk): redo it
                os.remove(path)
            else:
                parts[name] = info
    return parts


@dataclass
class OutputSummary:
    """What the output folder holds once checked."""
    inputs: list[dict]
    rows: int
    dim: int | None
    skipped: list[dict]


def verify_output(output_dir: str, inputs: list[InputFile], rows_per_part: int) -> OutputSummary:
    """Check that every part of every input is there once, whole, and that no id repeats."""
    from pyarrow import parquet

    parts = scan_parts(output_dir)
    by_source = {}
    for name, info in parts.items():
        by_source.setdefault(info['source'], {})[info['index']] = (name, info)
    problems = [f'{source.path}: no output part' for source in inputs if source.name not in by_source]
    for source_name, indexed in sorted(by_source.items()):
        problems += _part_problems(source_name, indexed, rows_per_part)
    if problems:
        raise IncompleteOutputError('the output is incomplete: ' + '; '.join(problems[:5]))
    ids = Counter()
    for name in parts:
        ids.update(parquet.read_table(os.path.join(output_dir, name), columns=['id']).column('id').to_pylist())
    repeated = [identifier for identifier, count in ids.items() if count > 1]
    if repeated:
        raise IncompleteOutputError(f'{len(repeated)} ids appear more than once, e.g. {repeated[0]!r}'
                                    f' (is -id_column unique?)')
    return _summarise(by_source, sum(ids.values()))


def _part_problems(source_name: str, indexed: dict[int, tuple[str, dict]], rows_per_part: int) -> list[str]:
    file_rows = next(iter(indexed.values()))[1]['file_rows']
    expected = max(1, -(-file_rows // rows_per_part))
    problems = [f'{source_name}: part {k} is missing' for k in range(expected) if k not in indexed]
    for name, info in indexed.values():
        want = info['end_row'] - info['first_row'] - len(info['skipped'])
        if not info['rows'] == info['rows_in_file'] == want:
            problems.append(f'{name}: {info["rows_in_file"]} rows, {want} expected')
    covered = sum(info['end_row'] - info['first_row'] for _, info in indexed.values())
    if covered != file_rows:
        problems.append(f'{source_name}: parts cover {covered} of its {file_rows} rows')
    return problems


def _summarise(by_source: dict, rows: int) -> OutputSummary:
    inputs, skipped, dims = [], [], set()
    for source_name, indexed in sorted(by_source.items()):
        infos = [info for _, info in sorted(indexed.values(), key=lambda item: item[1]['index'])]
        inputs.append({'path': infos[0]['path'], 'name': source_name, 'rows': infos[0]['file_rows'],
                       'parts': len(infos)})
        skipped += [{'file': infos[0]['path'], **bad} for info in infos for bad in info['skipped']]
        dims.update(info['dim'] for info in infos if info['rows'])
    if len(dims) > 1:
        raise IncompleteOutputError(f'the parts hold vectors of several sizes: {sorted(dims)}')
    return OutputSummary(inputs, rows, dims.pop() if dims else None, skipped)
