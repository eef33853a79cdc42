"""The BERT encoder forward pass as a tf.Module holding Google-named weights (trainable for fine-tuning)."""
from __future__ import annotations

import math

from .tensorflow_quiet import tf

from .config import BertConfig

# Additive attention bias for padding positions, as in Google's BERT; representable in float16.
_MASK_BIAS = -10000.0


def _activation(name: str, trainable: bool):
    """The feed-forward activation named by ``hidden_act`` (for a model that trains, or one that only infers)."""
    if name == 'gelu':  # exact erf form, as Google's BERT and HF's "gelu"
        return _gelu_exact_trainable if trainable else _gelu_exact
    if name in ('gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'):
        return lambda x: tf.nn.gelu(x, approximate=True)
    if name == 'relu':
        return tf.nn.relu
    raise ValueError(f'unsupported hidden_act {name!r}; supported: gelu, gelu_new, gelu_pytorch_tanh, relu')


def _normal_cdf(x):
    return (tf.math.erf(x * 0.7071067811865476) + 1.0) * 0.5


def _gelu_exact(x):
    # Spelt as the pattern that TensorFlow's oneDNN remapper fuses with the MatMul and BiasAdd before it into
    # one kernel (tf.nn.gelu's erfc form is not matched): 13% of a forward pass on the CPU, more in small ones.
    return _normal_cdf(x) * x


@tf.custom_gradient
def _gelu_exact_trainable(x):
    # The same values, with the derivative cdf(x) + x pdf(x) written out: TensorFlow's derivative of the erf form
    # runs several more passes over the intermediate activations, the largest tensors of a training step.
    cdf = _normal_cdf(x)

    def grad(upstream):
        return upstream * (cdf + x * tf.exp(-0.5 * tf.square(x)) * 0.3989422804014327)
    return cdf * x, grad


# Dropout draws 16 random bits per element (half the random numbers of a float draw, which made dropout a tenth
# of a training step on the CPU); the rate is then exact to 1 / 65536.
_DRAW_STEPS = 1 << 16


class StatelessDropout:
    """The dropout of one training call: each site that calls it draws its own mask from ``seed`` (a [2] int
    tensor), so the same seed gives the same masks, and a resumed fine-tune repeats them. TensorFlow's
    stateless random kernels also run several times faster on the CPU than the stateful ones of tf.nn.dropout."""

    def __init__(self, seed):
        self.seed = seed
        self._sites = 0

    def __call__(self, x, rate: float):
        if rate <= 0:
            return x
        self._sites += 1  # counted while tracing: the same site gets the same number in every call
        site_seed = tf.random.experimental.stateless_fold_in(self.seed, self._sites)
        dropped = min(round(rate * _DRAW_STEPS), _DRAW_STEPS - 1)  # draws below this are dropped
        size = tf.size(x)
        bits = tf.random.stateless_uniform([(size + 1) // 2], seed=site_seed, minval=None, maxval=None,
                                           dtype=tf.uint32)
        draws = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:size]
        keep = tf.reshape(draws >= dropped, tf.shape(x))
        return tf.where(keep, x * (_DRAW_STEPS / (_DRAW_STEPS - dropped)), tf.zeros_like(x))


def _centred_layer_norm(x, gamma, beta, eps):
    """LayerNorm over the last axis, centred once and the centred values reused for the variance (tf.nn.moments
    subtracts the mean twice)."""
    centered = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
    return beta + centered * (tf.math.rsqrt(variance + eps) * gamma)


def _batch_norm_layer_norm(x, gamma, beta, eps):
    """The same LayerNorm spelt as a training-mode batch norm with one channel per row (as Keras does), which
    TensorFlow's oneDNN remapper runs as one LayerNorm kernel on the CPU: 6-7% faster on passes of thousands of
    tokens, but about 0.1 ms slower per call on tiny ones."""
    rows = tf.reduce_prod(tf.shape(x)[:-1])
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(tf.reshape(x, [1, rows, -1, 1]), tf.ones([rows]), tf.zeros([rows]),
                                               epsilon=eps, data_format='NCHW')
    return tf.reshape(y, tf.shape(x)) * gamma + beta


def _no_dropout(x, rate):
    return x


def _same_sentence(input_mask):
    """bool [B, L, L]: whether two positions of a row hold the same sentence (or are both padding)."""
    return tf.equal(input_mask[:, :, tf.newaxis], input_mask[:, tf.newaxis, :])


def _positions_in_sentence(same_sentence, seq_len):
    """int32 [B, L]: how many earlier positions of the row hold the same sentence (padding counts as one, so a
    long run of padding can count past the position table: the caller clips it, padding's vectors are unused)."""
    earlier = tf.range(seq_len)[tf.newaxis, :] < tf.range(seq_len)[:, tf.newaxis]  # [L, L]: key before query
    return tf.reduce_sum(tf.cast(tf.logical_and(same_sentence, earlier), tf.int32), axis=-1)


class BertModel(tf.Module):
    """BERT embeddings + encoder + pooler.

    Kernels and embedding tables are stored in ``dtype`` (float16 for half precision); biases and LayerNorm
    parameters stay float32, as do the LayerNorm statistics, bias additions and softmax.
    ``packed_rows`` lets a row hold several sentences (see ``__call__``; the serving graph).
    With ``trainable`` the variables take gradients; ``hidden_dropout`` and ``attention_dropout`` (Google's
    ``hidden_dropout_prob`` and ``attention_probs_dropout_prob``) apply only to calls given a ``dropout``.
    """

    def __init__(self, config: BertConfig, weights: dict, dtype=tf.float32, use_position_embeddings=True,
                 name='bert', trainable=False, hidden_dropout=0.0, attention_dropout=0.0, packed_rows=False):
        super().__init__(name=name)
        self.config = config
        self.dtype = tf.as_dtype(dtype)
        self.use_position_embeddings = use_position_embeddings
        self.packed_rows = packed_rows
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self._act = _activation(config.hidden_act, trainable)
        self._w = {}
        with self.name_scope:
            for key, value in weights.items():
                var_dtype = self.dtype if key.endswith(('/kernel', '_embeddings')) else tf.float32
                self._w[key] = tf.Variable(tf.cast(value, var_dtype), trainable=trainable,
                                           name=key.removeprefix('bert/').replace('/', '.'))

    @property
    def variables_by_name(self) -> dict:
        """Google variable name -> tf.Variable."""
        return dict(self._w)

    def __call__(self, input_ids, input_mask, input_type_ids, dropout: StatelessDropout | None = None,
                 large_pass=False):
        """Return (outputs of every encoder layer, each [B, L, H]; pooler output [B, H]) in ``self.dtype``.

        ``input_mask`` is 1 at real tokens and 0 at padding; for a model built with ``packed_rows``, it is
        instead the number of the sentence a token belongs to in its row (1, 2, ... for a row packed with
        several sentences one after another): a token attends only to its own sentence, and position ids
        restart at each sentence, so a packed sentence gets the vectors it gets alone. The pooler output reads
        each row's first token (see ``pooler``).
        With a ``dropout`` (training), the model's dropout rates apply, with masks drawn from it.
        ``large_pass`` spells LayerNorm in the form oneDNN runs as one kernel (the same values): faster on passes of
        hundreds of tokens or more, slower on small ones."""
        drop = dropout or _no_dropout
        norm = _batch_norm_layer_norm if large_pass else _centred_layer_norm
        cfg = self.config
        w = self._w
        batch, seq_len = tf.shape(input_ids)[0], tf.shape(input_ids)[1]
        same_sentence = _same_sentence(input_mask) if self.packed_rows else None

        x = tf.gather(w['bert/embeddings/word_embeddings'], input_ids)
        x += tf.gather(w['bert/embeddings/token_type_embeddings'], input_type_ids)
        if self.use_position_embeddings:
            table = w['bert/embeddings/position_embeddings']
            x += table[tf.newaxis, :seq_len] if same_sentence is None else \
                tf.gather(table, tf.minimum(_positions_in_sentence(same_sentence, seq_len), tf.shape(table)[0] - 1))
        # Work on [B*L, H] matrices so every dense layer is one MatMul + BiasAdd.
        x = tf.reshape(drop(self._layer_norm(x, 'bert/embeddings/LayerNorm', norm), self.hidden_dropout),
                       [-1, cfg.hidden_size])

        if same_sentence is None:  # [B, 1, 1, L]: broadcast over heads and query positions
            bias = ((1.0 - tf.cast(input_mask, tf.float32)) * _MASK_BIAS)[:, tf.newaxis, tf.newaxis, :]
        else:  # [B, 1, L, L]: broadcast over heads
            visible = tf.logical_and(same_sentence, input_mask[:, tf.newaxis, :] > 0)
            bias = ((1.0 - tf.cast(visible, tf.float32)) * _MASK_BIAS)[:, tf.newaxis]

        layers = []
        for n in range(cfg.num_hidden_layers):
            x = self._layer(x, bias, batch, seq_len, f'bert/encoder/layer_{n}/', drop, norm)
            layers.append(tf.reshape(x, [batch, seq_len, cfg.hidden_size]))
        return layers, self.pooler(layers[-1][:, 0])

    def pooler(self, first_tokens):
        """BERT's pooler: tanh(dense) of the last layer's first-token ([CLS]) vectors [N, H]."""
        return tf.tanh(self._dense(first_tokens, 'bert/pooler/dense'))

    def _dense(self, x, prefix):
        if self.dtype == tf.float32:
            return tf.nn.bias_add(tf.matmul(x, self._w[prefix + '/kernel']), self._w[prefix + '/bias'])
        # Half precision: add the float32 bias after a cast, which also keeps TensorFlow from fusing MatMul and
        # BiasAdd into oneDNN's half-precision fused kernel (seconds per call on CPU).
        y = tf.cast(tf.matmul(x, self._w[prefix + '/kernel']), tf.float32) + self._w[prefix + '/bias']
        return tf.cast(y, self.dtype)

    def _layer_norm(self, x, prefix, norm):
        # Statistics in float32: float16 variance of large activations loses too much.
        y = norm(tf.cast(x, tf.float32), self._w[prefix + '/gamma'], self._w[prefix + '/beta'],
                 self.config.layer_norm_eps)
        return tf.cast(y, self.dtype)

    def _layer(self, x, bias, batch, seq_len, p, drop, norm):
        cfg = self.config
        heads = cfg.num_attention_heads
        head_size = cfg.hidden_size // heads

        def split_heads(t):  # [B*L, H] -> [B, heads, L, head_size]
            return tf.transpose(tf.reshape(t, [batch, seq_len, heads, head_size]), [0, 2, 1, 3])

        # Scale the queries rather than the scores: fewer multiplies, and float16 scores stay smaller.
        q = split_heads(self._dense(x, p + 'attention/self/query') * (1.0 / math.sqrt(head_size)))
        k = split_heads(self._dense(x, p + 'attention/self/key'))
        v = split_heads(self._dense(x, p + 'attention/self/value'))
        scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32) + bias
        probs = drop(tf.cast(tf.nn.softmax(scores, axis=-1), self.dtype), self.attention_dropout)
        context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [-1, cfg.hidden_size])

        attention = drop(self._dense(context, p + 'attention/output/dense'), self.hidden_dropout)
        x = self._layer_norm(attention + x, p + 'attention/output/LayerNorm', norm)
        intermediate = self._act(self._dense(x, p + 'intermediate/dense'))
        out = drop(self._dense(intermediate, p + 'output/dense'), self.hidden_dropout)
        return self._layer_norm(out + x, p + 'output/LayerNorm', norm)
