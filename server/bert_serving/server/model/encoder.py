"""In-process encoding: sentences -> features -> frozen graph -> float32 vectors.

A call's rows are sorted by length and run in chunks of ``CHUNK_ROWS``, each at the
length of its own longest sentence (rounded up to ``LENGTH_STEP``), so one long
sentence does not pad every row. A chunk's row count is rounded up too (see
``padded_row_count``), so a long-running server meets far fewer input shapes.
"""
from __future__ import annotations

import numpy as np

from .features import FeatureBuilder
from .graph import FrozenGraphRunner
from .strategy import PoolingStrategy
from .tokenization import FullTokenizer

CHUNK_ROWS = 64
# Chunk lengths are rounded up to a multiple of this, and chunk row counts above EXACT_ROWS
# to a multiple of ROW_STEP, so a server sees a few dozen input shapes rather than every
# length and row count: XLA compiles once per shape, and oneDNN caches per shape. Small
# chunks keep their row count: they are the batches built from many one-sentence requests,
# where padding would cost the most.
LENGTH_STEP = 8
EXACT_ROWS = 16
ROW_STEP = 8


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def padded_row_count(rows: int) -> int:
    """The number of rows a chunk of ``rows`` rows runs with: itself up to EXACT_ROWS, then a multiple of ROW_STEP."""
    return rows if rows <= EXACT_ROWS else _round_up(rows, ROW_STEP)


class SentenceEncoder:
    """Tokenize and encode sentences with a written graph on one device (used by workers and benchmarks)."""

    def __init__(self, graph_path, vocab_path, max_seq_len: int | None, do_lower_case=True, add_special_tokens=True,
                 pooling_strategy=PoolingStrategy.REDUCE_MEAN, model_max_len=512, fixed_embed_length=False,
                 device='/CPU:0', xla=False, max_segments=2):
        self.features = FeatureBuilder(FullTokenizer(vocab_path, do_lower_case), max_seq_len,
                                       model_max_len=model_max_len, add_special_tokens=add_special_tokens,
                                       max_segments=max_segments)
        self.runner = FrozenGraphRunner(graph_path, device=device, xla=xla)
        self.token_level = pooling_strategy is PoolingStrategy.NONE
        # Length of token-level results; None = the longest sentence of each call.
        if max_seq_len is not None:
            self.output_len = max_seq_len
        elif fixed_embed_length:
            self.output_len = model_max_len
        else:
            self.output_len = None

    def encode(self, texts, is_tokenized=False) -> tuple[np.ndarray, list[list[str]]]:
        """Vectors ``[n, dim]`` (``[n, length, dim]`` for NONE) and each row's tokens, in input order.

        Token-level results are zero-padded to the configured length (or the call's longest
        sentence). Malformed input raises ValueError (from the feature builder).
        """
        features = self.features.build(texts, is_tokenized=is_tokenized)
        lengths = features.input_mask.sum(axis=1)
        order = np.argsort(lengths, kind='stable')
        output = None
        for start in range(0, len(order), CHUNK_ROWS):
            rows = order[start:start + CHUNK_ROWS]
            width = min(_round_up(int(lengths[rows].max()), LENGTH_STEP), features.input_ids.shape[1])
            padded = np.resize(rows, padded_row_count(len(rows)))  # extra rows repeat real ones, then are dropped
            vectors = self.runner.run(features.input_ids[padded, :width], features.input_mask[padded, :width],
                                      features.input_type_ids[padded, :width])[:len(rows)]
            if output is None:
                output = self._allocate(len(order), vectors.shape[-1], features.input_ids.shape[1])
            if self.token_level:
                output[rows, :width] = vectors
            else:
                output[rows] = vectors
        return output, features.tokens

    def _allocate(self, num_rows: int, dim: int, longest: int) -> np.ndarray:
        if self.token_level:
            return np.zeros((num_rows, self.output_len or longest, dim), dtype=np.float32)
        return np.empty((num_rows, dim), dtype=np.float32)
