"""Class probabilities of a ``-task classify`` server as ranked labels, and the checks that come with them."""

import numpy as np


def classifier_labels(server_config, where):
    """The labels of the classifier the server at ``where`` serves; ValueError when it serves no classifier."""
    labels = server_config.get('labels')
    if server_config.get('task') != 'classify' or not labels:
        task = server_config.get('task') or 'encode (a 1.10 server)'
        raise ValueError(f'the server at {where} serves task {task!r}, not a classifier: start it with '
                         f'"bert-serving-start -task classify -tuned_model_dir DIR" on a fine-tuned checkpoint')
    return list(labels)


def check_top_k(top_k):
    """Raise unless ``top_k`` is a positive int or None (every label)."""
    if top_k is None:
        return
    if not isinstance(top_k, int) or isinstance(top_k, bool):
        raise TypeError(f'top_k must be an int or None (every label), got {type(top_k).__name__}')
    if top_k < 1:
        raise ValueError(f'top_k must be at least 1, got {top_k}')


def top_labels(probabilities, labels, top_k=1):
    """Per row of ``probabilities``, the ``top_k`` best ``{"label", "score"}``, best first (all when None).

    Equal scores keep the order of ``labels``.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(f'the server sent results of shape {probabilities.shape} for {len(labels)} labels')
    order = np.argsort(-probabilities, axis=1, kind='stable')[:, :top_k]
    return [[{'label': labels[column], 'score': float(row[column])} for column in columns]
            for row, columns in zip(probabilities, order)]
