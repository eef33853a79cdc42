"""Classification metrics from probabilities (scikit-learn): what eval_results.json and TensorBoard show."""
from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

KEEP_METRICS = ('accuracy', 'f1', 'auc', 'loss')


def weighted_log_loss(probabilities: np.ndarray, label_ids: np.ndarray, weights: np.ndarray) -> float:
    """Mean cross-entropy, each example weighted (no label smoothing)."""
    picked = probabilities[np.arange(len(label_ids)), label_ids]
    losses = -np.log(np.clip(picked, 1e-12, 1.0))
    return float(np.sum(losses * weights) / max(np.sum(weights), 1e-12))


def auc(label_ids: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC (one-vs-rest macro for several labels); NaN when a label has no example."""
    num_labels = probabilities.shape[1]
    if len(np.unique(label_ids)) < num_labels:
        return math.nan
    if num_labels == 2:
        return float(skm.roc_auc_score(label_ids, probabilities[:, 1]))
    return float(skm.roc_auc_score(label_ids, probabilities, multi_class='ovr', labels=list(range(num_labels))))


def classification_metrics(probabilities: np.ndarray, label_ids: np.ndarray, weights: np.ndarray,
                           labels: list[str]) -> dict:
    """accuracy, macro precision / recall / f1, auc, loss, per-label f1 and the confusion matrix."""
    predicted = probabilities.argmax(axis=1)
    ids = list(range(len(labels)))
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        label_ids, predicted, labels=ids, average='macro', zero_division=0)
    per_label = skm.f1_score(label_ids, predicted, labels=ids, average=None, zero_division=0)
    return {
        'accuracy': float(skm.accuracy_score(label_ids, predicted)),
        'precision': float(precision), 'recall': float(recall), 'f1': float(f1),
        'auc': auc(label_ids, probabilities),
        'loss': weighted_log_loss(probabilities, label_ids, weights),
        'per_label_f1': {label: float(score) for label, score in zip(labels, per_label)},
        'confusion_matrix': skm.confusion_matrix(label_ids, predicted, labels=ids).tolist(),
        'examples': int(len(label_ids)),
    }
