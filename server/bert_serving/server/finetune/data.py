"""Labelled examples and the readers that make them: TSV files with a header, or any DataProcessor subclass."""
from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass

TEXT_A_NAMES = ('text_a', 'text', 'sentence')
KNOWN_COLUMNS = {'text_b', 'text_c', 'weight', 'label', 'guid', *TEXT_A_NAMES}

log = logging.getLogger(__name__)


class DataFileError(ValueError):
    """A data file is unreadable or holds a malformed row; the message names the file and the line."""


@dataclass(frozen=True)
class InputExample:
    """One example: up to three text segments, a label (None in test and predict data) and a loss weight."""
    guid: str
    text_a: str
    text_b: str | None = None
    text_c: str | None = None
    label: str | None = None
    weight: float = 1.0

    @property
    def segments(self) -> tuple[str, ...]:
        """The texts in order, without the missing ones."""
        return tuple(t for t in (self.text_a, self.text_b, self.text_c) if t is not None)


class DataProcessor:
    """Where the examples of a task come from; subclass it for formats other than TSV."""

    def get_train_examples(self) -> list[InputExample]:
        raise NotImplementedError

    def get_dev_examples(self) -> list[InputExample]:
        raise NotImplementedError

    def get_test_examples(self) -> list[InputExample]:
        raise NotImplementedError

    def get_labels(self) -> list[str]:
        """The labels, sorted (the default: every label of the training examples)."""
        return sorted({example.label for example in self.get_train_examples()})


class TsvProcessor(DataProcessor):
    """``train.tsv``, ``dev.tsv`` and ``test.tsv`` of a folder; bad rows raise, or are skipped and counted."""

    def __init__(self, data_dir, skip_bad_rows: bool = False, labels: list[str] | None = None):
        """``labels`` (e.g. a fine-tune's labels.txt) replace those of train.tsv, which is then not needed."""
        self.data_dir = os.fspath(data_dir)
        self.skip_bad_rows = skip_bad_rows
        self.labels = labels
        self.skipped: dict[str, int] = {}  # file name -> rows skipped
        self._cache: dict[str, list[InputExample]] = {}

    def get_train_examples(self):
        return self._examples('train.tsv', need_label=True)

    def get_dev_examples(self):
        examples = self._examples('dev.tsv', need_label=True)
        known = set(self.get_labels())
        return self._keep_known_labels(os.path.join(self.data_dir, 'dev.tsv'), examples, known)

    def get_test_examples(self):
        return self._examples('test.tsv', need_label=False)

    def get_labels(self):
        return self.labels if self.labels is not None else super().get_labels()

    def read_file(self, path, need_label=False) -> list[InputExample]:
        """The examples of any TSV file with our header (e.g. a -predict_file)."""
        return self._read(os.fspath(path), need_label)

    def _examples(self, name, need_label):
        if name not in self._cache:
            self._cache[name] = self._read(os.path.join(self.data_dir, name), need_label)
        return self._cache[name]

    def _keep_known_labels(self, path, examples, known):
        kept = []
        for example in examples:
            if example.label in known:
                kept.append(example)
            else:
                self._bad_row(path, example.guid.rsplit('-', 1)[-1],
                              f'label {example.label!r} does not occur in train.tsv')
        return kept

    def _read(self, path, need_label):
        try:
            with open(path, encoding='utf-8', newline='') as f:
                rows = list(csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE))
        except FileNotFoundError:
            raise DataFileError(f'{path}: file not found') from None
        except UnicodeDecodeError as e:
            raise DataFileError(f'{path}: not UTF-8 ({e})') from None
        if not rows:
            raise DataFileError(f'{path}: empty file (expected a header row naming the columns)')
        columns = _header_columns(path, rows[0], need_label)
        examples = []
        for line, row in enumerate(rows[1:], start=2):
            if not row or row == ['']:
                continue
            try:
                examples.append(_parse_row(path, line, row, columns, need_label))
            except _BadRow as e:
                self._bad_row(path, line, str(e))
        if not examples:
            raise DataFileError(f'{path}: no examples')
        return examples

    def _bad_row(self, path, line, problem):
        if not self.skip_bad_rows:
            raise DataFileError(f'{path}: line {line}: {problem}')
        name = os.path.basename(path)
        self.skipped[name] = self.skipped.get(name, 0) + 1
        log.warning('skipping %s line %s: %s', path, line, problem)


def _header_columns(path, header, need_label) -> dict[str, int]:
    columns = {name.strip().lower(): index for index, name in enumerate(header)}
    unknown = sorted(set(columns) - KNOWN_COLUMNS)
    if unknown:
        raise DataFileError(f'{path}: line 1: unknown column(s) {", ".join(unknown)} '
                            f'(known: {", ".join(sorted(KNOWN_COLUMNS))})')
    text_a = [name for name in TEXT_A_NAMES if name in columns]
    if len(text_a) != 1:
        raise DataFileError(f'{path}: line 1: the header needs exactly one of the columns '
                            f'{", ".join(TEXT_A_NAMES)}, found {text_a or "none"}')
    columns['text_a'] = columns.pop(text_a[0])
    if need_label and 'label' not in columns:
        raise DataFileError(f'{path}: line 1: no label column')
    if 'text_c' in columns and 'text_b' not in columns:
        raise DataFileError(f'{path}: line 1: a text_c column needs a text_b column')
    return columns


class _BadRow(ValueError):
    """What is wrong with one row (the caller adds the file and the line)."""


def _parse_row(path, line, row, columns, need_label) -> InputExample:
    def fail(problem):
        raise _BadRow(problem)

    if len(row) != len(columns):
        fail(f'{len(row)} columns, the header has {len(columns)}')
    values = {name: row[index].strip() for name, index in columns.items()}
    for name in ('text_a', 'text_b', 'text_c'):
        if name in values and not values[name]:
            fail(f'empty {name}')
    label = values.get('label') or None
    if need_label and label is None:
        fail('missing label')
    weight = 1.0
    if 'weight' in columns:
        try:
            weight = float(values['weight'])
        except ValueError:
            fail(f'weight {values["weight"]!r} is not a number')
        if not math.isfinite(weight) or weight < 0:
            fail(f'weight {values["weight"]!r} must be a finite number >= 0')
    guid = f'{os.path.basename(path)}-{line}'
    return InputExample(guid, values['text_a'], values.get('text_b'), values.get('text_c'), label, weight)
