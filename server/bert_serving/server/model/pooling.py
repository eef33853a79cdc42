"""The pooling head: token vectors of the chosen encoder layers -> one float32 vector per sentence (SPEC 4).

Rows may be packed with several sentences (``input_mask`` numbers them 1, 2, ... within a row, see
``BertModel``); ``sentence_numbers`` (int32 [S], 1..S) says how many each row has room for, so the pooled
strategies give [B * S, dim]: row b's sentence s at b * S + s - 1 (slots a row does not fill are zeros or
meaningless, and dropped by the caller). NONE keeps one sentence per row: [B, L, dim].

Sentences are pooled by segment reductions over each token's sentence slot rather than by a matrix product with
a [B, S, L] membership: oneDNN builds and keeps kernels for every operand shape it meets, so each new S cost a
long-running server 0.52 MiB (0.34 with segment sums, the rest being oneDNN's allocator); no ratio of
``benchmarks/ratios.py`` measured a change in speed.
"""
from __future__ import annotations

from .tensorflow_quiet import tf

from .strategy import PoolingStrategy


def pooling_mask(input_ids, input_mask, special_token_ids=()):
    """float32 [B, L]: 1 for real tokens, 0 for padding and, when given, for positions holding a special id."""
    mask = tf.cast(input_mask > 0, tf.float32)
    for token_id in special_token_ids:
        mask *= tf.cast(tf.not_equal(input_ids, token_id), tf.float32)
    return mask


def sentence_spans(input_mask, sentence_numbers):
    """(starts, lengths), int32 [B, S]: where each sentence of a row starts (sentences follow each other; clipped
    into the row) and how many tokens it has."""
    lengths = tf.reshape(_by_slot(tf.math.unsorted_segment_sum, tf.ones_like(input_mask), input_mask,
                                  sentence_numbers), [tf.shape(input_mask)[0], tf.size(sentence_numbers)])
    starts = tf.cumsum(lengths, axis=-1, exclusive=True)
    return tf.minimum(starts, tf.shape(input_mask)[1] - 1), lengths


def first_token_vectors(last_layer, input_mask, sentence_numbers):
    """[B * S, H]: the vector of each sentence's first token ([CLS]), what BERT's pooler reads (CLS_POOLED)."""
    starts, _ = sentence_spans(input_mask, sentence_numbers)
    return _per_sentence(tf.gather(last_layer, starts, batch_dims=1))


def pool(layers, input_ids, input_mask, sentence_numbers, strategy: PoolingStrategy, special_token_ids=()):
    """Pool the [B, L, H] ``layers`` (concatenated on the last axis, in order) with ``strategy`` (not CLS_POOLED,
    which is BERT's pooler on ``first_token_vectors``).

    ``special_token_ids`` (for -mask_cls_sep) are zeroed out of the mask, so they count for nothing in the means
    and maxima, and their own vectors become zero for NONE, FIRST_TOKEN and LAST_TOKEN. The result is float32.
    """
    h = _concat(layers)
    keep = pooling_mask(input_ids, input_mask, special_token_ids)
    if strategy is PoolingStrategy.NONE:
        return h * keep[:, :, tf.newaxis]
    if strategy is PoolingStrategy.REDUCE_MEAN:
        return _masked_mean(h, keep, input_mask, sentence_numbers)
    if strategy is PoolingStrategy.REDUCE_MAX:
        return _masked_max(h, keep, input_mask, sentence_numbers)
    if strategy is PoolingStrategy.REDUCE_MEAN_MAX:
        return tf.concat([_masked_mean(h, keep, input_mask, sentence_numbers),
                          _masked_max(h, keep, input_mask, sentence_numbers)], axis=-1)
    masked = h * keep[:, :, tf.newaxis] if special_token_ids else h
    starts, lengths = sentence_spans(input_mask, sentence_numbers)
    if strategy is PoolingStrategy.FIRST_TOKEN:
        return _per_sentence(tf.gather(masked, starts, batch_dims=1))
    if strategy is PoolingStrategy.LAST_TOKEN:
        # The last real token, found from the unmodified spans; an empty sentence falls back to its start.
        last = starts + tf.maximum(lengths - 1, 0)
        return _per_sentence(tf.gather(masked, last, batch_dims=1))
    raise ValueError(f'unsupported pooling strategy {strategy}')


def _concat(layers):
    # Pooling is per channel, so concatenating the layers first equals pooling each and concatenating.
    return tf.cast(layers[0] if len(layers) == 1 else tf.concat(layers, axis=-1), tf.float32)


def _per_sentence(vectors):
    """[B, S, D] -> [B * S, D]."""
    return tf.reshape(vectors, [-1, vectors.shape[-1]])


def _by_slot(reduce, values, input_mask, sentence_numbers):
    """``reduce`` (an unsorted segment reduction) of the [B, L, ...] ``values`` of each sentence: [B * S, ...],
    row b's sentence s at b * S + s - 1. Padding goes to one more slot, dropped."""
    rows, per_row = tf.shape(input_mask)[0], tf.size(sentence_numbers)
    slots = rows * per_row
    token_slots = tf.where(input_mask > 0, tf.range(rows)[:, tf.newaxis] * per_row + input_mask - 1, slots)
    return reduce(values, token_slots, slots + 1)[:-1]


def _masked_mean(h, keep, input_mask, sentence_numbers):
    sums = _by_slot(tf.math.unsorted_segment_sum, h * keep[:, :, tf.newaxis], input_mask, sentence_numbers)
    counts = _by_slot(tf.math.unsorted_segment_sum, keep[:, :, tf.newaxis], input_mask, sentence_numbers)
    return sums / (counts + 1e-10)


def _masked_max(h, keep, input_mask, sentence_numbers):
    # Masked tokens get -1e30, so they lose to any real one, and a sentence with no real token pools to about -1e30.
    return _by_slot(tf.math.unsorted_segment_max, h - (1.0 - keep[:, :, tf.newaxis]) * 1e30, input_mask,
                    sentence_numbers)
