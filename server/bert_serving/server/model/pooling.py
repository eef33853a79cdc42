"""The pooling head: token vectors of the chosen encoder layers -> one float32 vector per sentence (SPEC 4)."""
from __future__ import annotations

from .tensorflow_quiet import tf

from .strategy import PoolingStrategy


def pooling_mask(input_ids, input_mask, special_token_ids=()):
    """float32 [B, L]: 1 for real tokens, 0 for padding and, when given, for positions holding a special id."""
    mask = tf.cast(input_mask, tf.float32)
    for token_id in special_token_ids:
        mask *= tf.cast(tf.not_equal(input_ids, token_id), tf.float32)
    return mask


def pool(layers, pooled_output, input_ids, input_mask, strategy: PoolingStrategy, special_token_ids=()):
    """Pool the [B, L, H] ``layers`` (concatenated on the last axis, in order) with ``strategy``.

    ``special_token_ids`` (for -mask_cls_sep) are zeroed out of the mask, so they count for nothing in the means
    and maxima, and their own vectors become zero for NONE, FIRST_TOKEN and LAST_TOKEN.
    CLS_POOLED returns ``pooled_output`` and ignores ``layers``. The result is float32.
    """
    if strategy is PoolingStrategy.CLS_POOLED:
        return tf.cast(pooled_output, tf.float32)

    # Pooling is per channel, so concatenating the layers first equals pooling each and concatenating.
    h = tf.cast(layers[0] if len(layers) == 1 else tf.concat(layers, axis=-1), tf.float32)
    mask = pooling_mask(input_ids, input_mask, special_token_ids)
    m = mask[:, :, tf.newaxis]

    if strategy is PoolingStrategy.REDUCE_MEAN:
        return _masked_mean(h, m)
    if strategy is PoolingStrategy.REDUCE_MAX:
        return _masked_max(h, m)
    if strategy is PoolingStrategy.REDUCE_MEAN_MAX:
        return tf.concat([_masked_mean(h, m), _masked_max(h, m)], axis=-1)
    if strategy is PoolingStrategy.NONE:
        return h * m
    masked = h * m if special_token_ids else h
    if strategy is PoolingStrategy.FIRST_TOKEN:
        return masked[:, 0]
    if strategy is PoolingStrategy.LAST_TOKEN:
        # The last real token, found from the unmodified input mask; an empty row falls back to position 0.
        last = tf.maximum(tf.reduce_sum(tf.cast(input_mask, tf.int32), axis=1) - 1, 0)
        return tf.gather(masked, last, batch_dims=1)
    raise ValueError(f'unsupported pooling strategy {strategy}')


def _masked_mean(h, m):
    return tf.reduce_sum(h * m, axis=1) / (tf.reduce_sum(m, axis=1) + 1e-10)


def _masked_max(h, m):
    return tf.reduce_max(h - (1.0 - m) * 1e30, axis=1)
