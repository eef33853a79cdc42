"""BertClassifier: fine-tune, evaluate and predict with our TF 2 BERT and a classification head."""
from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..model.checkpoint import ModelFileError, expected_shapes, load_config, load_weights, locate_model
from ..model.tensorflow_quiet import tf
from ..model.tokenization import load_vocab
from . import checkpoints
from .data import InputExample, TsvProcessor
from .distribution import make_strategy
from .metrics import classification_metrics
from .modeling import HEAD_BIAS, HEAD_WEIGHTS, ClassifierModel, dropout_rates, initial_head
from .optimization import AdamWeightDecay, learning_rate
from .records import TokenizerSettings, read_records, write_records
from .summaries import Summaries
from .training import Trainer

log = logging.getLogger(__name__)


@dataclass
class FinetuneOptions:
    """Hyper-parameters and settings; the defaults are those of bert-serving-finetune."""
    max_seq_len: int = 128
    train_batch_size: int = 32
    eval_batch_size: int = 128
    predict_batch_size: int = 128
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    cycle: int = 1
    label_smoothing: float = 0.1
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 20
    keep_metric: str = 'accuracy'
    tensorboard_dir: str | None = None
    num_preprocess_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    devices: str = 'cpu'
    do_lower_case: bool = True
    seed: int = 0
    config_name: str = 'bert_config.json'


class BertClassifier:
    """A text classifier on ``model_dir``'s BERT whose checkpoints, labels and reports go to ``output_dir``.

    ``labels`` default to ``output_dir/labels.txt``, then ``tuned_model_dir/labels.txt``; training sets them.
    Evaluation and prediction use the newest checkpoint of ``output_dir``, else that of ``tuned_model_dir``.
    """

    def __init__(self, model_dir, output_dir, labels: list[str] | None = None, tuned_model_dir=None,
                 options: FinetuneOptions | None = None):
        self.options = options or FinetuneOptions()
        self.output_dir = os.path.abspath(os.fspath(output_dir))
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise checkpoints.OutputDirError(f'-output_dir {self.output_dir} exists and is not a folder')
        self.tuned_model_dir = os.fspath(tuned_model_dir) if tuned_model_dir else None
        self.files = locate_model(model_dir, config_name=self.options.config_name)
        self.config = load_config(self.files)
        self._check_vocabulary()
        self._given_labels = labels
        self.labels = labels or checkpoints.read_labels(self.output_dir) or (
            checkpoints.read_labels(self.tuned_model_dir) if self.tuned_model_dir else None)
        self.strategy = make_strategy(self.options.devices)
        self.settings = TokenizerSettings(self.files.vocab_path, self.options.do_lower_case,
                                          self.options.max_seq_len, self.config.max_position_embeddings)
        self._model = None
        self.examples_per_second = float('nan')  # of the last train(), warm-up steps left out

    def _check_vocabulary(self):
        size = len(load_vocab(self.files.vocab_path))
        if size > self.config.vocab_size:
            raise ModelFileError(f'{self.files.vocab_path} has {size} tokens but {self.files.config_path} says '
                                 f'vocab_size {self.config.vocab_size}: the vocabulary does not fit the checkpoint')
        if self.options.max_seq_len > self.config.max_position_embeddings:
            raise ValueError(f'-max_seq_len {self.options.max_seq_len} exceeds the model\'s '
                             f'max_position_embeddings {self.config.max_position_embeddings}')

    # -- public API -------------------------------------------------------------------------------------

    def train(self, train_examples: list[InputExample], dev_examples: list[InputExample] | None = None) -> dict:
        """Fine-tune (resuming from ``output_dir``'s newest checkpoint); the best checkpoint's entry, if any."""
        labels = self._given_labels or sorted({e.label for e in train_examples})
        self.labels = labels
        checkpoints.check_fits(self.output_dir, labels, self._expected_shapes())
        checkpoints.write_labels(self.output_dir, labels)
        shards = self._records(train_examples, 'train')
        dev_shards = self._records(dev_examples, 'dev') if dev_examples else None
        model, optimizer, step = self._build(for_training=True)
        trainer = Trainer(self, model, optimizer, step, self._summaries())
        best = trainer.run(shards, len(train_examples), dev_shards)
        self.examples_per_second = trainer.examples_per_second()
        return best

    def evaluate(self, examples: list[InputExample]) -> dict:
        """Metrics of the current model on labelled ``examples`` (see ``metrics.classification_metrics``)."""
        probabilities, label_ids, weights = self.probabilities_of(self._records(examples, 'eval'),
                                                                  self.options.eval_batch_size)
        return classification_metrics(probabilities, label_ids, weights, self._require_labels())

    def predict(self, data) -> np.ndarray:
        """Probabilities [n, num_labels] of a TSV file or a list of examples; [num_labels] for one example."""
        if isinstance(data, InputExample):
            return self.predict([data])[0]
        if isinstance(data, (str, os.PathLike)):
            data = TsvProcessor(os.path.dirname(os.fspath(data))).read_file(data)
        probabilities, _, _ = self.probabilities_of(self._records(data, 'predict'), self.options.predict_batch_size)
        return probabilities

    # -- shared with the trainer -------------------------------------------------------------------------

    def probabilities_of(self, shards, batch_size):
        """(probabilities, label ids, weights) of the examples in ``shards``, in order."""
        model = self._build()[0]
        forward = self._forward(model)
        out, label_ids, weights = [], [], []
        for batch in read_records(shards).padded_batch(batch_size).prefetch(2):
            out.append(forward({k: batch[k] for k in ('input_ids', 'input_mask', 'input_type_ids')}).numpy())
            label_ids.append(batch['label_id'].numpy())
            weights.append(batch['weight'].numpy())
        return np.concatenate(out), np.concatenate(label_ids), np.concatenate(weights)

    def _forward(self, model):
        if not hasattr(self, '_forward_fn'):
            spec = {k: tf.TensorSpec([None, None], tf.int32) for k in ('input_ids', 'input_mask', 'input_type_ids')}

            @tf.function(input_signature=[spec])
            def probabilities(features):
                return tf.nn.softmax(model(features), axis=-1)
            self._forward_fn = probabilities
        return self._forward_fn

    def _records(self, examples, split):
        folder = os.path.join(self.output_dir, 'records', split)
        started = time.perf_counter()
        shards = write_records(examples, self._require_labels(), self.settings, folder,
                               self.options.num_preprocess_workers)
        log.info('%s: %d examples in %d TFRecord shard(s) (%.1f s)', split, len(examples), len(shards),
                 time.perf_counter() - started)
        return shards

    def _require_labels(self):
        if not self.labels:
            raise ValueError(f'no labels: train first, or give a -output_dir or -tuned_model_dir holding '
                             f'{checkpoints.LABELS_FILE}')
        return self.labels

    def _expected_shapes(self):
        shapes = expected_shapes(self.config)
        shapes[HEAD_WEIGHTS] = (len(self.labels), self.config.hidden_size)
        shapes[HEAD_BIAS] = (len(self.labels),)
        return shapes

    def _summaries(self):
        return Summaries(self.options.tensorboard_dir or os.path.join(self.output_dir, 'tensorboard'))

    # -- building and restoring --------------------------------------------------------------------------

    def _build(self, for_training=False):
        """(model, optimizer or None, global step variable), built once and restored from the newest checkpoint."""
        if self._model is not None and (self._model[1] is not None or not for_training):
            return self._model
        labels = self._require_labels()
        tf.random.set_seed(self.options.seed)
        with self.strategy.scope():
            model = ClassifierModel(self.config, *self._initial_weights(len(labels)),
                                    dropout=dropout_rates(self.files.config_path))
            optimizer = AdamWeightDecay(model.variables_by_name) if for_training else None
            step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
        prefix = checkpoints.latest(self.output_dir)
        if prefix:
            self._restore(prefix, model, optimizer, step)
        self._model = (model, optimizer, step)
        self.__dict__.pop('_forward_fn', None)
        return self._model

    def _initial_weights(self, num_labels):
        """Encoder weights (pretrained, or from -tuned_model_dir) and the head (from -tuned_model_dir or new)."""
        files, head = self.files, initial_head(num_labels, self.config.hidden_size, self.options.seed)
        tuned = checkpoints.latest(self.tuned_model_dir) if self.tuned_model_dir else None
        if self.tuned_model_dir and tuned is None:
            raise ModelFileError(f'-tuned_model_dir {self.tuned_model_dir} holds no checkpoint (no "checkpoint" '
                                 f'index file naming a model.ckpt-STEP)')
        if tuned:
            files = locate_model(self.files.model_dir, self.options.config_name, os.path.basename(tuned),
                                 os.path.dirname(tuned))
            saved = checkpoints.read(tuned)
            if saved.get(HEAD_WEIGHTS, np.empty(0)).shape == head[HEAD_WEIGHTS].shape:
                head = {HEAD_WEIGHTS: saved[HEAD_WEIGHTS], HEAD_BIAS: saved[HEAD_BIAS]}
        return load_weights(files, self.config), head

    def _restore(self, prefix, model, optimizer, step):
        saved = checkpoints.read(prefix)
        targets = {**model.variables_by_name, **(optimizer.slots_by_name if optimizer else {})}
        for name, variable in targets.items():
            if name in saved:
                variable.assign(saved[name])
        step.assign(int(saved.get('global_step', checkpoints.step_of(prefix))))
        log.info('restored %s (global step %d)', prefix, int(step.numpy()))

    def checkpoint_tensors(self, model, optimizer, step) -> dict:
        """Every tensor a checkpoint holds, by Google name."""
        tensors = {name: v.read_value() for name, v in model.variables_by_name.items()}
        tensors.update({name: v.read_value() for name, v in optimizer.slots_by_name.items()})
        tensors['global_step'] = step.read_value()
        return tensors

    def schedule(self, num_examples):
        """(total steps, warmup steps, lr function of the step) for ``num_examples`` training examples."""
        o = self.options
        total = max(1, int(num_examples / o.train_batch_size * o.num_train_epochs))
        warmup = int(total * o.warmup_proportion)
        return total, warmup, functools.partial(learning_rate, peak=o.learning_rate, total_steps=total,
                                                warmup_steps=warmup, cycles=o.cycle)


def write_predictions(path, labels: list[str], probabilities: np.ndarray) -> None:
    """``predictions.tsv``: a header ``label`` + one column per label, then the predicted label and probabilities."""
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        f.write('\t'.join(['label', *labels]) + '\n')
        for row in probabilities:
            f.write('\t'.join([labels[int(np.argmax(row))], *(f'{p:.8g}' for p in row)]) + '\n')
