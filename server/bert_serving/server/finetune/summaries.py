"""TensorBoard: scalars, confusion-matrix and ROC images, histograms of the head's weights."""
from __future__ import annotations

import io
import math
import os

import numpy as np

from ..model.tensorflow_quiet import tf

SCALARS = ('loss', 'accuracy', 'precision', 'recall', 'f1', 'auc')


class Summaries:
    """One event-file writer per run (``train``, ``eval``) under the TensorBoard folder."""

    def __init__(self, tensorboard_dir: str):
        self.dir = tensorboard_dir
        self._writers = {}

    def writer(self, run: str):
        if run not in self._writers:
            self._writers[run] = tf.summary.create_file_writer(os.path.join(self.dir, run))
        return self._writers[run]

    def scalars(self, run: str, step: int, values: dict) -> None:
        with self.writer(run).as_default(step=step):
            for name, value in values.items():
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    tf.summary.scalar(name, value)

    def metrics(self, run: str, step: int, metrics: dict, probabilities, label_ids, labels) -> None:
        """The scalar metrics plus the confusion matrix and ROC curve images."""
        self.scalars(run, step, {name: metrics[name] for name in SCALARS})
        with self.writer(run).as_default(step=step):
            tf.summary.image('confusion_matrix', _png(_confusion_figure, metrics['confusion_matrix'], labels))
            tf.summary.image('roc_curve', _png(_roc_figure, probabilities, label_ids, labels))
        self.writer(run).flush()

    def histograms(self, run: str, step: int, tensors: dict) -> None:
        with self.writer(run).as_default(step=step):
            for name, value in tensors.items():
                tf.summary.histogram(name, value)
        self.writer(run).flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


def _png(draw, *args):
    """A [1, H, W, 4] uint8 image of what ``draw(axes, *args)`` plots."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib.figure import Figure
    figure = Figure(figsize=(5, 4), dpi=80)
    draw(figure.add_subplot(), *args)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png')
    return tf.image.decode_png(buffer.getvalue(), channels=4)[tf.newaxis]


def _confusion_figure(axes, matrix, labels):
    matrix = np.asarray(matrix)
    axes.imshow(matrix, cmap='Blues')
    axes.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
             xlabel='predicted', ylabel='true', title='confusion matrix')
    for (row, col), count in np.ndenumerate(matrix):
        axes.text(col, row, str(count), ha='center', va='center')


def _roc_figure(axes, probabilities, label_ids, labels):
    from sklearn.metrics import roc_curve
    shown = labels[1:] if len(labels) == 2 else labels
    for label in shown:
        index = labels.index(label)
        if 0 < np.sum(label_ids == index) < len(label_ids):
            fpr, tpr, _ = roc_curve(label_ids == index, probabilities[:, index])
            axes.plot(fpr, tpr, label=label)
    axes.plot([0, 1], [0, 1], linestyle=':', color='grey')
    axes.set(xlabel='false positive rate', ylabel='true positive rate', title='ROC (one vs rest)')
    if axes.lines[:-1]:
        axes.legend(loc='lower right')
