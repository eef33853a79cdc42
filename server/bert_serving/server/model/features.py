"""Turn sentences (or pairs ``a ||| b``) into BERT input arrays.

Semantics follow bert-as-service 1.10: ``[CLS] a [SEP]`` for a single sentence,
``[CLS] a [SEP] b [SEP]`` with segment ids 0 then 1 for a pair; a too-long pair
loses tokens from the end of its longer side, a too-long single sentence keeps
its first tokens. Each batch is padded only to its own longest sequence.

Fine-tuning data may have a third segment: ``[CLS] a [SEP] b [SEP] c [SEP]``, with ``b`` and ``c`` both in
segment 1 (BERT has two token types); a too-long triple loses tokens from the end of its longest side.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .tokenization import UNK_TOKEN, FullTokenizer

CLS_TOKEN = '[CLS]'
SEP_TOKEN = '[SEP]'
PAIR_SEPARATOR = ' ||| '
TOKENIZED_PAIR_SEPARATOR = '|||'


@dataclass(frozen=True, eq=False)
class Features:
    """Model inputs for one batch; all arrays are int32 ``[n, seq_len]`` and zero on padding."""

    input_ids: np.ndarray
    input_mask: np.ndarray
    input_type_ids: np.ndarray
    tokens: list[list[str]]  # per sentence, with [CLS]/[SEP], without padding


def _is_list_like(value):
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


class FeatureBuilder:
    """Tokenize, pair up, truncate and pad sentences for a BERT model."""

    def __init__(self, tokenizer: FullTokenizer, max_seq_len: int | None, model_max_len: int = 512,
                 add_special_tokens: bool = True, max_segments: int = 2):
        """``max_seq_len`` None means "as long as the model allows" (``model_max_len``).

        ``max_segments`` 3 reads ``a ||| b ||| c`` as three segments, as fine-tuning encodes text_a, text_b and
        text_c (a classify server); 2 keeps 1.10's pairs, split at the last separator.
        """
        shortest = 3 if add_special_tokens else 1
        if model_max_len < shortest:
            raise ValueError(f'model_max_len must be at least {shortest}, got {model_max_len}')
        if max_seq_len is not None and not shortest <= max_seq_len <= model_max_len:
            raise ValueError(f'max_seq_len must be None or between {shortest} and '
                             f'model_max_len={model_max_len}, got {max_seq_len}')
        if add_special_tokens:
            missing = [token for token in (CLS_TOKEN, SEP_TOKEN) if token not in tokenizer.vocab]
            if missing:
                raise ValueError(f'the vocabulary lacks the special tokens {missing}')
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        self.model_max_len = model_max_len
        self.add_special_tokens = add_special_tokens
        self.max_segments = max_segments
        self.seq_len_limit = model_max_len if max_seq_len is None else max_seq_len

    def tokenize(self, texts, is_tokenized: bool = False) -> list[list[str]]:
        """Final token list of every sentence: truncated, with [CLS]/[SEP] unless disabled."""
        return [tokens for tokens, _ in self._encode(texts, is_tokenized)]

    def build(self, texts, is_tokenized: bool = False, pad_to: int | None = None) -> Features:
        """Model inputs for ``texts``, padded to the longest sequence here or to ``pad_to``."""
        return self._arrays(self._encode(texts, is_tokenized), pad_to)

    def build_segments(self, rows, pad_to: int | None = None) -> Features:
        """Model inputs for ``rows`` of one to three texts each (a, b, c); ``(a, b)`` is encoded as ``a ||| b``."""
        if not _is_list_like(rows) or not rows:
            raise ValueError('rows must be a non-empty list of tuples of texts')
        encoded = []
        for index, row in enumerate(rows):
            if not 1 <= len(row) <= 3:
                raise ValueError(f'rows[{index}] must hold one to three texts, got {len(row)}')
            encoded.append(self._assemble(*(self._segment(index, text, n) for n, text in enumerate(row))))
        return self._arrays(encoded, pad_to)

    def _segment(self, index, text, n):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'texts[{index}]: segment {n + 1} is empty or not a str')
        return self._word_pieces(index, text.strip(), f'segment {n + 1}')

    def _arrays(self, encoded, pad_to):
        longest = max(len(tokens) for tokens, _ in encoded)
        if pad_to is None:
            seq_len = longest
        elif pad_to < longest:
            raise ValueError(f'pad_to={pad_to} is shorter than the longest sequence ({longest} tokens)')
        else:
            seq_len = pad_to
        input_ids = np.zeros((len(encoded), seq_len), dtype=np.int32)
        input_mask = np.zeros_like(input_ids)
        input_type_ids = np.zeros_like(input_ids)
        for row, (tokens, first_segment_len) in enumerate(encoded):
            input_ids[row, :len(tokens)] = self.tokenizer.convert_tokens_to_ids(tokens)
            input_mask[row, :len(tokens)] = 1
            input_type_ids[row, first_segment_len:len(tokens)] = 1
        return Features(input_ids=input_ids, input_mask=input_mask,
                        input_type_ids=input_type_ids, tokens=[tokens for tokens, _ in encoded])

    def _encode(self, texts, is_tokenized):
        """List of (tokens with specials, number of positions in the first segment)."""
        if not _is_list_like(texts):
            raise ValueError(f'texts must be a list, got {type(texts).__name__}')
        if not texts:
            raise ValueError('texts is empty')
        split = self._split_tokenized if is_tokenized else self._split_text
        return [self._assemble(*split(index, item)) for index, item in enumerate(texts)]

    def _split_text(self, index, text):
        """Tokens of the sentence, or of both sides of ``a ||| b`` (second is None if no pair)."""
        if not isinstance(text, str):
            raise ValueError(f'texts[{index}] must be a str, got {type(text).__name__}')
        text = text.strip()
        if not text:
            raise ValueError(f'texts[{index}] is empty or whitespace only')
        # Like the original's greedy regex, the last " ||| " separates the pair.
        if self.max_segments > 2 and text.count(PAIR_SEPARATOR) >= 2:
            parts = text.rsplit(PAIR_SEPARATOR, self.max_segments - 1)
            return tuple(self._word_pieces(index, part, f'segment {n + 1}') for n, part in enumerate(parts))
        first, separator, second = text.rpartition(PAIR_SEPARATOR)
        if not separator:
            return self._word_pieces(index, text, 'the sentence'), None
        return (self._word_pieces(index, first, 'the first sentence of the pair'),
                self._word_pieces(index, second, 'the second sentence of the pair'))

    def _word_pieces(self, index, text, what):
        tokens = self.tokenizer.tokenize(text)
        if not tokens:
            raise ValueError(f'texts[{index}]: {what} has no tokens after removing control characters')
        return tokens

    def _split_tokenized(self, index, tokens):
        """Vocabulary tokens of a pre-tokenized sentence; the first "|||" token separates a pair."""
        if not _is_list_like(tokens):
            raise ValueError(f'texts[{index}] must be a list of str tokens (is_tokenized=True), '
                             f'got {type(tokens).__name__}')
        if not tokens:
            raise ValueError(f'texts[{index}] is an empty token list')
        for position, token in enumerate(tokens):
            if not isinstance(token, str):
                raise ValueError(f'texts[{index}][{position}] must be a str, got {type(token).__name__}')
            if not token.strip():
                raise ValueError(f'texts[{index}][{position}] is an empty or whitespace-only token')
        vocab = self.tokenizer.vocab
        known = [token if token in vocab else UNK_TOKEN for token in tokens]
        if TOKENIZED_PAIR_SEPARATOR not in tokens:
            return known, None
        split_at = tokens.index(TOKENIZED_PAIR_SEPARATOR)
        first, second = known[:split_at], known[split_at + 1:]
        for side, name in ((first, 'first'), (second, 'second')):
            if not side:
                raise ValueError(f'texts[{index}]: the {name} sentence of the pair has no tokens')
        return first, second

    def _assemble(self, first, *rest):
        """Truncate to the length limit and add the special tokens; ``rest`` is (), (second,) or (second, third)."""
        segments = [first, *(segment for segment in rest if segment is not None)]
        special_count = len(segments) + 1 if self.add_special_tokens else 0
        budget = self.seq_len_limit - special_count
        if len(segments) == 1:
            segments[0] = first[:budget]
        else:
            lengths = [len(segment) for segment in segments]
            while sum(lengths) > budget:  # trim the longest side, the last one on a tie
                longest = max(lengths)
                lengths[max(n for n, length in enumerate(lengths) if length == longest)] -= 1
            segments = [segment[:length] for segment, length in zip(segments, lengths)]
        if not self.add_special_tokens:
            return [token for segment in segments for token in segment], len(segments[0])
        tokens = [CLS_TOKEN, *segments[0], SEP_TOKEN]
        first_segment_len = len(tokens)
        for segment in segments[1:]:
            tokens += [*segment, SEP_TOKEN]
        return tokens, first_segment_len
