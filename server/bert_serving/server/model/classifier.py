"""The classification head of a fine-tuned checkpoint, as Google's ``run_classifier.py`` writes it.

``output_weights`` [num_labels, hidden], ``output_bias`` [num_labels]; probabilities =
softmax(pooled_output @ output_weights^T + output_bias), pooled_output being BERT's pooler (CLS_POOLED).
The labels, in the order of the head's rows, are the lines of ``labels.txt`` beside the checkpoint.
TensorFlow is imported only where the graph is built: the server process reads the labels without it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .checkpoint import ModelFileError, ModelFiles, read_checkpoint_tensors
from .config import BertConfig

LABELS_NAME = 'labels.txt'
HEAD_WEIGHTS, HEAD_BIAS = 'output_weights', 'output_bias'
# /rerank scores the probability of a label with one of these names.
POSITIVE_NAMES = ('1', 'true', 'yes', 'relevant', 'positive', 'pos', 'entailment', 'similar')


@dataclass(frozen=True)
class ClassifierHead:
    """The head's weights [num_labels, hidden] and bias [num_labels], float32."""
    weights: np.ndarray
    bias: np.ndarray


def head_checkpoint(files: ModelFiles) -> str:
    """Prefix of the checkpoint that holds the head: the fine-tuned one, else a Google model's own."""
    if files.tuned_ckpt_prefix:
        return files.tuned_ckpt_prefix
    if files.layout == 'google':
        return files.weights_path
    raise ModelFileError(f'{files.model_dir} is a Hugging Face folder without a classification head: '
                         f'-task classify needs -tuned_model_dir naming a fine-tuned checkpoint')


def labels_path(files: ModelFiles) -> str:
    """``labels.txt`` in the folder of the checkpoint that holds the head."""
    return os.path.join(os.path.dirname(head_checkpoint(files)), LABELS_NAME)


def read_labels(files: ModelFiles) -> list[str]:
    """The labels, one a line, in the order of the head's rows; ModelFileError names the file and line."""
    path = labels_path(files)
    try:
        with open(path, encoding='utf-8-sig') as f:  # a BOM is not part of the first label
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ModelFileError(f'{path} not found: -task classify needs the labels of the fine-tuned '
                             f'checkpoint, one a line, beside it') from None
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFileError(f'{path}: cannot read the labels ({error})') from None
    while lines and not lines[-1].strip():
        lines.pop()
    seen = {}
    for number, label in enumerate(lines, start=1):
        if not label.strip():
            raise ModelFileError(f'{path}, line {number}: empty label')
        if label in seen:
            raise ModelFileError(f'{path}, line {number}: label {label!r} repeats line {seen[label]}')
        seen[label] = number
    if len(lines) < 2:
        raise ModelFileError(f'{path}: a classifier needs at least two labels, found {len(lines)}')
    return lines


def rerank_label(labels: list[str]) -> str | None:
    """The label whose probability scores a (query, text) pair, or None when no label can be that.

    A label named like a positive answer (1, true, yes, relevant, positive...) wins; else, with two
    labels, the second (sorted training labels put 1 after 0, true after false, yes after no).
    """
    named = [label for label in labels if label.strip().lower() in POSITIVE_NAMES]
    if len(named) == 1:
        return named[0]
    return labels[1] if len(labels) == 2 else None


def load_head(files: ModelFiles, config: BertConfig, num_labels: int) -> ClassifierHead:
    """The head's tensors, checked against the model's hidden size and the number of labels."""
    prefix = head_checkpoint(files)
    shapes = {HEAD_WEIGHTS: (num_labels, config.hidden_size), HEAD_BIAS: (num_labels,)}
    try:
        tensors = read_checkpoint_tensors(prefix, shapes, required=False)
    except ModelFileError as error:  # a head of another shape: say where the number of labels comes from
        raise ModelFileError(f'{error}; {labels_path(files)} lists {num_labels} labels') from None
    if len(tensors) < len(shapes):
        raise ModelFileError(f'{prefix} has no classification head ({HEAD_WEIGHTS}, {HEAD_BIAS}): '
                             f'-task classify needs a fine-tuned classifier; serve this one with -task encode')
    return ClassifierHead(tensors[HEAD_WEIGHTS], tensors[HEAD_BIAS])


def probabilities(pooled_output, head: ClassifierHead):
    """softmax(pooled_output @ weights^T + bias) in float32, inside a TensorFlow graph."""
    from .tensorflow_quiet import tf

    logits = tf.matmul(tf.cast(pooled_output, tf.float32), head.weights, transpose_b=True) + head.bias
    return tf.nn.softmax(logits, axis=-1)
