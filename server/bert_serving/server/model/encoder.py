"""In-process encoding: sentences -> features -> frozen graph -> float32 vectors.

A call's rows are sorted by length and cut into chunks of at most ``max_batch_tokens`` rows x length
(see ``chunking``), each run at the length of its own longest sentence, so one long sentence does not
pad every row and short sentences run in large chunks.
"""
from __future__ import annotations

import numpy as np

from .chunking import cut_chunks, default_max_batch_tokens
from .features import FeatureBuilder
from .graph import FrozenGraphRunner
from .strategy import PoolingStrategy
from .tokenization import FullTokenizer


class SentenceEncoder:
    """Tokenize and encode sentences with a written graph on one device (used by workers and benchmarks).

    ``max_batch_tokens`` bounds rows x length of one forward pass (None: the device's default, see
    ``chunking.default_max_batch_tokens``).
    """

    def __init__(self, graph_path, vocab_path, max_seq_len: int | None, do_lower_case=True, add_special_tokens=True,
                 pooling_strategy=PoolingStrategy.REDUCE_MEAN, model_max_len=512, fixed_embed_length=False,
                 device='/CPU:0', xla=False, max_batch_tokens: int | None = None, max_segments=2):
        self.features = FeatureBuilder(FullTokenizer(vocab_path, do_lower_case), max_seq_len,
                                       model_max_len=model_max_len, add_special_tokens=add_special_tokens,
                                       max_segments=max_segments)
        self.runner = FrozenGraphRunner(graph_path, device=device, xla=xla)
        self.token_level = pooling_strategy is PoolingStrategy.NONE
        self.max_batch_tokens = max_batch_tokens or default_max_batch_tokens(device)
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
        for chunk in cut_chunks(lengths[order], features.input_ids.shape[1], self.max_batch_tokens):
            rows = order[chunk.start:chunk.stop]
            padded = np.resize(rows, chunk.rows)  # extra rows repeat real ones, then are dropped
            width = chunk.width
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
