"""The classifier: our BERT (trainable, with dropout) plus Google's head on the pooled output."""
from __future__ import annotations

import json

import numpy as np

from ..model.bert import BertModel, StatelessDropout
from ..model.config import BertConfig
from ..model.tensorflow_quiet import tf

HEAD_WEIGHTS = 'output_weights'  # [num_labels, hidden_size], as Google's run_classifier.py
HEAD_BIAS = 'output_bias'  # [num_labels]


def dropout_rates(config_path) -> tuple[float, float]:
    """(hidden, attention) dropout from a Google or HF config; 0.1 each when the file does not say."""
    with open(config_path, encoding='utf-8') as f:
        raw = json.load(f)
    return float(raw.get('hidden_dropout_prob', 0.1)), float(raw.get('attention_probs_dropout_prob', 0.1))


def initial_head(num_labels: int, hidden_size: int, seed: int) -> dict[str, np.ndarray]:
    """Google's initialisation: truncated normal (stddev 0.02) weights, zero bias."""
    weights = tf.random.stateless_truncated_normal([num_labels, hidden_size], seed=[seed, 0], stddev=0.02)
    return {HEAD_WEIGHTS: weights.numpy(), HEAD_BIAS: np.zeros([num_labels], np.float32)}


class ClassifierModel(tf.Module):
    """logits = dropout(pooled_output) @ output_weights^T + output_bias."""

    def __init__(self, config: BertConfig, weights: dict, head: dict, dropout: tuple[float, float] = (0.1, 0.1)):
        super().__init__(name='classifier')
        hidden, attention = dropout
        self.bert = BertModel(config, weights, trainable=True, hidden_dropout=hidden, attention_dropout=attention)
        self.hidden_dropout = hidden
        self.output_weights = tf.Variable(head[HEAD_WEIGHTS], name=HEAD_WEIGHTS)
        self.output_bias = tf.Variable(head[HEAD_BIAS], name=HEAD_BIAS)

    @property
    def variables_by_name(self) -> dict:
        """Google variable name -> tf.Variable, head included."""
        return {**self.bert.variables_by_name, HEAD_WEIGHTS: self.output_weights, HEAD_BIAS: self.output_bias}

    def __call__(self, features, dropout_seed=None):
        """Logits; with a ``dropout_seed`` (a [2] int tensor: training) the dropout masks drawn from it."""
        dropout = StatelessDropout(dropout_seed) if dropout_seed is not None else None
        _, pooled = self.bert(features['input_ids'], features['input_mask'], features['input_type_ids'], dropout)
        if dropout:
            pooled = dropout(pooled, self.hidden_dropout)
        return tf.matmul(pooled, self.output_weights, transpose_b=True) + self.output_bias
