"""How a batch is cut into forward passes: sentences packed into rows, rows sorted by length, chunks bounded
by a token budget.

Sentences are first packed several to a row (``pack_rows``, for graphs that pool per sentence): a row of
``PACK_WIDTH`` tokens (or the call's longest sentence, see ``row_room``) holds one long sentence or several
short ones, which attend only to themselves (see ``BertModel``), so short and long sentences alike run with
almost no padding.
A chunk runs at the length of its own longest row, rounded up to the width grid (see ``grid_width``), with at most
``max_batch_tokens`` rows x length, so short sentences run in large chunks and long ones in small; where
the chunks start is chosen to pad as few tokens as possible. Row
counts above ``EXACT_ROWS`` are rounded up to a multiple of ``ROW_STEP`` (see ``padded_row_count``), so a
long-running server meets a few dozen input shapes rather than every length and row count: XLA compiles
once per shape, and oneDNN caches per shape. Small chunks keep their row count: they are the batches built
from many one-sentence requests, where padding would cost the most. No TensorFlow here: the server
process reads the defaults for its option.
"""
from __future__ import annotations

import bisect
from typing import NamedTuple

import numpy as np

LENGTH_STEP = 8
EXACT_ROWS = 16
ROW_STEP = 8
# The fixed cost of a forward pass (a session run, its kernel launches), in tokens of work: cuts into many
# tiny chunks cost more than they save in padding. Measured with MiniLM on 2 CPU cores: a one-sentence pass
# takes 4.9 ms, where each token of a large pass takes 0.06 ms.
PASS_COST_TOKENS = 80
# rows x length of one forward pass by default. On the CPU measured with MiniLM on 2 cores, two passes at once
# (see docs/performance.md: budgets of 512 to 4,096 tokens, natural text at max_seq_len 128 and 25): passes of
# about a thousand tokens cut a call into enough of them to keep both pass threads busy to its end, and a call
# of a few dozen sentences into two. On a GPU, where big passes pay, not measured: a budget that gives at least
# the 64 rows of the former fixed chunks up to length 256.
CPU_MAX_BATCH_TOKENS = 1024
# Forward passes of one call run at once: on a CPU, two (see SentenceEncoder); a GPU runs its passes in turn.
CPU_CONCURRENT_PASSES = 2
# The room of a packed row, in tokens (a longer sentence gets a row of its own length). Wider rows pad less but
# make attention, which runs over the whole row, cost more: measured with MiniLM on natural text (see
# docs/performance.md).
PACK_WIDTH = 64
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


def default_concurrent_passes(device: str) -> int:
    """How many forward passes of a call run at once on ``device``."""
    return 1 if 'GPU' in device.upper() else CPU_CONCURRENT_PASSES


def pack_rows(lengths: np.ndarray, room: int) -> list[list[int]]:
    """Sentences (indexes into ``lengths``) placed in rows of at most ``room`` tokens, longest first, each into
    the fullest row it still fits (best-fit decreasing); a sentence longer than ``room`` gets a row alone."""
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (tokens left, row), sorted
    for sentence in np.argsort(-np.asarray(lengths), kind='stable'):
        length = int(lengths[sentence])
        at = bisect.bisect_left(free, (length, -1))
        if at < len(free):
            left, row = free.pop(at)
            rows[row].append(int(sentence))
        else:
            left, row = max(room, length), len(rows)
            rows.append([int(sentence)])
        if left > length:
            bisect.insort(free, (left - length, row))
    return rows


def sentence_slots(most: int) -> int:
    """The sentences per row a pass makes room for, when its fullest row holds ``most``: a power of two, so
    that a long-running server meets few input shapes (the graph's output has a slot for each)."""
    return 1 << (most - 1).bit_length()


def round_up(value, step: int):
    """``value`` (a number or a numpy array) rounded up to a multiple of ``step``."""
    return -(-value // step) * step


def grid_width(lengths, sentence_cap: int | None = None):
    """``lengths`` rounded up to the widths passes run at: multiples of LENGTH_STEP, and multiples of the sentence
    cap (``max_seq_len``), since rows of sentences cut at the cap are common: at 25 tokens a row of two is 50."""
    up = round_up(lengths, LENGTH_STEP)
    return np.minimum(up, round_up(lengths, sentence_cap)) if sentence_cap else up


def row_room(longest: int, max_batch_tokens: int, sentence_cap: int | None = None) -> int:
    """The room of each packed row of a call whose longest sentence has ``longest`` tokens: PACK_WIDTH (at most
    the budget) or, when longer, the longest sentence's, rounded up to the width grid, so that a full row needs
    no padding. (Rows as long as the longest sentence, 65 tokens say, filled to 65 and then ran at 72.)"""
    return int(grid_width(max(min(PACK_WIDTH, max_batch_tokens), longest), sentence_cap))


def padded_row_count(rows: int) -> int:
    """The number of rows a chunk of ``rows`` rows runs with: itself up to EXACT_ROWS, then a multiple of ROW_STEP."""
    return rows if rows <= EXACT_ROWS else round_up(rows, ROW_STEP)


def cut_chunks(sorted_lengths: np.ndarray, max_width: int, max_batch_tokens: int,
               sentence_cap: int | None = None) -> list[Chunk]:
    """The cheapest cut of rows sorted by ascending length into chunks of at most ``max_batch_tokens`` rows x
    width (a row longer than that runs alone): the fewest padded tokens, counting ``PASS_COST_TOKENS`` for
    each forward pass. Chunk widths are on the grid of ``grid_width`` up to ``max_width``. Dynamic programming
    over where each chunk starts."""
    widths = _end_widths(sorted_lengths, max_width, sentence_cap)
    cost = np.zeros(len(widths) + 1)          # cost[i]: the cheapest cut of the first i rows
    start = np.zeros(len(widths) + 1, dtype=np.int64)
    for stop in range(1, len(widths) + 1):
        most_rows = max(1, max_batch_tokens // int(widths[stop - 1]))
        starts = np.arange(max(0, stop - most_rows), stop)
        tokens = _padded_row_counts(stop - starts) * widths[stop - 1]
        total = np.where((tokens <= max_batch_tokens) | (starts == stop - 1),
                         cost[starts] + tokens + PASS_COST_TOKENS, np.inf)
        best = int(np.argmin(total))
        cost[stop], start[stop] = total[best], starts[best]
    chunks, stop = [], len(widths)
    while stop > 0:
        chunks.append(Chunk(int(start[stop]), stop, padded_row_count(stop - int(start[stop])), int(widths[stop - 1])))
        stop = int(start[stop])
    return chunks[::-1]


def split_lone_chunk(chunks: list[Chunk], sorted_lengths: np.ndarray, max_width: int,
                     sentence_cap: int | None = None) -> list[Chunk]:
    """``cut_chunks``' cut of a call into passes that run at once: a lone chunk of two rows or more cut in two, at
    the row that best balances their tokens, so that a small call keeps both pass threads (and, with one
    intra-op thread per pass, both cores) busy. Other cuts as they are."""
    if len(chunks) != 1 or chunks[0].stop - chunks[0].start < 2:
        return chunks
    widths = _end_widths(sorted_lengths, max_width, sentence_cap)
    count = len(widths)

    def halves(middle: int) -> tuple[Chunk, Chunk]:
        return (Chunk(0, middle, padded_row_count(middle), int(widths[middle - 1])),
                Chunk(middle, count, padded_row_count(count - middle), int(widths[-1])))
    return list(min((halves(middle) for middle in range(1, count)),
                    key=lambda pair: max(chunk.rows * chunk.width for chunk in pair)))


def threads_per_pass(cores: int, passes: int) -> int:
    """TensorFlow's intra-op threads when ``passes`` forward passes share ``cores``: each its share, at least one."""
    return max(1, cores // passes)


def _end_widths(sorted_lengths: np.ndarray, max_width: int, sentence_cap: int | None) -> np.ndarray:
    """The width of a chunk that ends at each of the rows sorted by ascending length: on the grid, at most
    ``max_width``."""
    return np.minimum(grid_width(np.asarray(sorted_lengths, dtype=np.int64), sentence_cap), max_width)


def _padded_row_counts(rows: np.ndarray) -> np.ndarray:
    """``padded_row_count`` of each of ``rows``."""
    return np.where(rows <= EXACT_ROWS, rows, round_up(rows, ROW_STEP))
