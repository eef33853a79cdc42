"""In-process encoding: sentences -> features -> frozen graph -> float32 vectors.

A call's sentences are packed several to a row (pooled graphs; one per row for token-level ones), the rows
sorted by length and cut into chunks of at most ``max_batch_tokens`` rows x length (see ``chunking``), each
run at the length of its own longest row, so one long sentence does not pad every row and short sentences
run in large chunks. On a CPU two chunks run at once.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from .chunking import (EXACT_ROWS, Chunk, cut_chunks, default_concurrent_passes, default_max_batch_tokens, grid_width,
                       pack_rows, row_room, sentence_slots, split_lone_chunk)
from .features import FeatureBuilder
from .graph import FrozenGraphRunner, share_cores_between_passes
from .strategy import PoolingStrategy
from .tokenization import FullTokenizer


class ForwardPass(NamedTuple):
    """One run of the graph: the sentences (indexes into the call's input) of each of its rows, and its shape
    (``chunk.rows`` high, repeating real rows, and ``chunk.width`` wide)."""
    rows: list[list[int]]
    chunk: Chunk

    @property
    def sentences_per_row(self) -> int:
        """The sentence slots of each row in the graph's output (see ``chunking.sentence_slots``)."""
        return sentence_slots(max(map(len, self.rows)))


class SentenceEncoder:
    """Tokenize and encode sentences with a written graph on one device (used by workers and benchmarks).

    ``max_batch_tokens`` bounds rows x length of one forward pass (None: the device's default, see
    ``chunking.default_max_batch_tokens``). ``concurrent_passes`` forward passes of a call run at once, on
    threads of their own (None: the device's default, see ``chunking.default_concurrent_passes``): on a CPU one
    pass's single-threaded steps (feeding its inputs, attention's small kernels, LayerNorm) leave cores idle
    that the other's matrix multiplications fill. Each pass gets its share of the cores as TensorFlow's intra-op
    threads (``graph.share_cores_between_passes``), and a call that fits one chunk runs as two.
    """

    def __init__(self, graph_path, vocab_path, max_seq_len: int | None, do_lower_case=True, add_special_tokens=True,
                 pooling_strategy=PoolingStrategy.REDUCE_MEAN, model_max_len=512, fixed_embed_length=False,
                 device='/CPU:0', xla=False, max_batch_tokens: int | None = None, max_segments=2,
                 concurrent_passes: int | None = None):
        self.features = FeatureBuilder(FullTokenizer(vocab_path, do_lower_case), max_seq_len,
                                       model_max_len=model_max_len, add_special_tokens=add_special_tokens,
                                       max_segments=max_segments)
        passes = concurrent_passes or default_concurrent_passes(device)
        if passes > 1:
            share_cores_between_passes(passes)
        self.runner = FrozenGraphRunner(graph_path, device=device, xla=xla)
        self.token_level = pooling_strategy is PoolingStrategy.NONE
        self.max_batch_tokens = max_batch_tokens or default_max_batch_tokens(device)
        self._pass_threads = ThreadPoolExecutor(passes, thread_name_prefix='forward-pass') if passes > 1 else None
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
        output = None
        for forward, vectors in self._run_passes(features, lengths, self.plan(lengths)):
            rows, chunk, per_row = forward.rows, forward.chunk, forward.sentences_per_row
            if output is None:
                output = self._allocate(len(lengths), vectors.shape[-1], features.input_ids.shape[1])
            sentences = [s for row in rows for s in row]
            slots = [r * per_row + slot for r, row in enumerate(rows) for slot in range(len(row))]
            if self.token_level:
                output[sentences, :chunk.width] = vectors[slots]
            else:
                output[sentences] = vectors[slots]
        return output, features.tokens

    def _run_passes(self, features, lengths: np.ndarray, passes: list[ForwardPass]):
        """Each pass with its graph output, in plan order; on the pass threads (largest first) when there are
        several."""
        if self._pass_threads is None or len(passes) < 2:
            for forward in passes:
                yield forward, self._run_pass(features, lengths, forward)
            return
        largest_first = sorted(range(len(passes)), key=lambda p: -passes[p].chunk.rows * passes[p].chunk.width)
        futures = {p: self._pass_threads.submit(self._run_pass, features, lengths, passes[p]) for p in largest_first}
        try:
            for p, forward in enumerate(passes):
                yield forward, futures[p].result()
        finally:  # a failed pass: the ones not started yet are dropped
            for future in futures.values():
                future.cancel()

    def _run_pass(self, features, lengths: np.ndarray, forward: ForwardPass) -> np.ndarray:
        rows, chunk = forward.rows, forward.chunk
        padded = [rows[r % len(rows)] for r in range(chunk.rows)]  # extra rows repeat real ones
        return self.runner.run(*_packed_inputs(features, lengths, padded, chunk.width), forward.sentences_per_row)

    def plan(self, lengths: np.ndarray) -> list[ForwardPass]:
        """The forward passes that encode sentences of ``lengths`` tokens (given in input order)."""
        if len(lengths) == 0:
            return []
        cap = self.features.max_seq_len
        if self.token_level:
            rows = [[s] for s in range(len(lengths))]
        else:
            rows = pack_rows(lengths, room=row_room(int(lengths.max()), self.max_batch_tokens, cap))
        fills = np.array([lengths[row].sum() for row in rows])
        order = np.argsort(fills, kind='stable')
        chunks = cut_chunks(fills[order], int(fills.max()), self.max_batch_tokens, cap)
        if self._pass_threads is not None:
            chunks = split_lone_chunk(chunks, fills[order], int(fills.max()), cap)
        passes = [ForwardPass([rows[r] for r in order[chunk.start:chunk.stop]], chunk) for chunk in chunks]
        return [_on_width_grid(forward, cap) for forward in passes]

    def _allocate(self, num_rows: int, dim: int, longest: int) -> np.ndarray:
        if self.token_level:
            return np.zeros((num_rows, self.output_len or longest, dim), dtype=np.float32)
        return np.empty((num_rows, dim), dtype=np.float32)


def _on_width_grid(forward: ForwardPass, sentence_cap: int | None) -> ForwardPass:
    """A small pass of packed rows at its width rounded up to the width grid, like the chunks before the widest.

    The widest chunk of a call runs at its fullest row's exact width. For the many small calls of a busy server
    (a few rows of packed short sentences, filled to 50-63 tokens) that made a new input shape almost every
    time, and oneDNN keeps kernels for each shape it meets. Passes of one sentence per row (a one-sentence
    call, token-level graphs, batches cut at max_seq_len) and large passes keep the exact width: there the
    padding would cost more."""
    chunk = forward.chunk
    if chunk.rows > EXACT_ROWS or all(len(row) == 1 for row in forward.rows):
        return forward
    return forward._replace(chunk=chunk._replace(width=int(grid_width(chunk.width, sentence_cap))))


def _packed_inputs(features, lengths: np.ndarray, rows: list[list[int]], width: int):
    """input_ids, input_mask (numbering each row's sentences 1, 2, ...), input_type_ids of ``rows``."""
    arrays = [np.zeros((len(rows), width), dtype=np.int32) for _ in range(3)]
    ids, mask, types = arrays
    for r, row in enumerate(rows):
        at = 0
        for number, sentence in enumerate(row, start=1):
            n = lengths[sentence]
            ids[r, at:at + n] = features.input_ids[sentence, :n]
            types[r, at:at + n] = features.input_type_ids[sentence, :n]
            mask[r, at:at + n] = number
            at += n
    return ids, mask, types
