"""How a batch is cut into forward passes: rows sorted by length, chunks bounded by a token budget.

A chunk runs at the length of its own longest sentence, rounded up to ``LENGTH_STEP``, with at most
``max_batch_tokens`` rows x length, so short sentences run in large chunks and long ones in small. Row
counts above ``EXACT_ROWS`` are rounded up to a multiple of ``ROW_STEP`` (see ``padded_row_count``), so a
long-running server meets a few dozen input shapes rather than every length and row count: XLA compiles
once per shape, and oneDNN caches per shape. Small chunks keep their row count: they are the batches built
from many one-sentence requests, where padding would cost the most. No TensorFlow here: the server
process reads the defaults for its option.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

LENGTH_STEP = 8
EXACT_ROWS = 16
ROW_STEP = 8
# rows x length of one forward pass by default. On the CPU measured with MiniLM on 2 cores (see
# benchmarks/README.md: budgets of 1,024 to 16,384 tokens, natural text at max_seq_len 128 and 25): chunks
# that fit the caches run more tokens per second. On a GPU, where big passes pay, not measured: a budget
# that gives at least the 64 rows of the former fixed chunks up to length 256.
CPU_MAX_BATCH_TOKENS = 1024
GPU_MAX_BATCH_TOKENS = 16384


class Chunk(NamedTuple):
    """Rows ``start:stop`` of the length-sorted batch, run ``rows`` high (repeating real rows) and ``width`` wide."""
    start: int
    stop: int
    rows: int
    width: int


def default_max_batch_tokens(device: str) -> int:
    """The token budget of a forward pass on ``device`` (a TensorFlow device name such as '/GPU:0')."""
    return GPU_MAX_BATCH_TOKENS if 'GPU' in device.upper() else CPU_MAX_BATCH_TOKENS


def round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def padded_row_count(rows: int) -> int:
    """The number of rows a chunk of ``rows`` rows runs with: itself up to EXACT_ROWS, then a multiple of ROW_STEP."""
    return rows if rows <= EXACT_ROWS else round_up(rows, ROW_STEP)


def cut_chunks(sorted_lengths: np.ndarray, max_width: int, max_batch_tokens: int) -> list[Chunk]:
    """Chunks of rows sorted by ascending length, each as many rows as fit ``max_batch_tokens`` at its width
    (one row at least, however long)."""
    widths = np.minimum(-(-np.asarray(sorted_lengths) // LENGTH_STEP) * LENGTH_STEP, max_width)
    chunks, start = [], 0
    for stop in range(1, len(widths) + 1):
        next_fits = stop < len(widths) and padded_row_count(stop + 1 - start) * widths[stop] <= max_batch_tokens
        if not next_fits:
            chunks.append(Chunk(start, stop, padded_row_count(stop - start), int(widths[stop - 1])))
            start = stop
    return chunks
