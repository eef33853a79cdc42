"""In-process encoding: sentences -> features -> frozen graph -> float32 vectors."""
from __future__ import annotations

import numpy as np

from .features import FeatureBuilder
from .graph import FrozenGraphRunner
from .strategy import PoolingStrategy
from .tokenization import FullTokenizer


class SentenceEncoder:
    """Tokenize and encode sentences with a written graph on one device (used by workers and benchmarks)."""

    def __init__(self, graph_path, vocab_path, max_seq_len: int | None, do_lower_case=True, add_special_tokens=True,
                 pooling_strategy=PoolingStrategy.REDUCE_MEAN, model_max_len=512, fixed_embed_length=False,
                 device='/CPU:0', xla=False):
        self.features = FeatureBuilder(FullTokenizer(vocab_path, do_lower_case), max_seq_len,
                                       model_max_len=model_max_len, add_special_tokens=add_special_tokens)
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

        The graph runs at the length of the call's longest sentence; token-level results are zero-padded back to
        the configured length. Malformed input raises ValueError (from the feature builder).
        """
        features = self.features.build(texts, is_tokenized=is_tokenized)
        vectors = self.runner.run(features.input_ids, features.input_mask, features.input_type_ids)
        if self.token_level and self.output_len is not None and vectors.shape[1] < self.output_len:
            vectors = np.pad(vectors, ((0, 0), (0, self.output_len - vectors.shape[1]), (0, 0)))
        return vectors, features.tokens
