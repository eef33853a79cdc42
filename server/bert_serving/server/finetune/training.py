"""The training loop: distributed steps, progress bar, saves with dev evaluation, TensorBoard."""
from __future__ import annotations

import logging
import time

import numpy as np
from tqdm import tqdm

from ..model.tensorflow_quiet import tf
from . import checkpoints
from .metrics import classification_metrics
from .modeling import HEAD_BIAS, HEAD_WEIGHTS
from .records import read_records

log = logging.getLogger(__name__)
SHUFFLE_BUFFER = 10_000
WARMUP_STEPS = 3  # steps left out of the speed figure: the first ones trace and compile the step
FEATURES = ('input_ids', 'input_mask', 'input_type_ids')


def smoothed_loss_sum(logits, label_ids, weights, smoothing: float):
    """Sum over the batch of weight * cross-entropy against label-smoothed targets."""
    num_labels = tf.shape(logits)[-1]
    targets = tf.one_hot(label_ids, num_labels) * (1.0 - smoothing) + smoothing / tf.cast(num_labels, tf.float32)
    per_example = -tf.reduce_sum(targets * tf.nn.log_softmax(logits, axis=-1), axis=-1)
    return tf.reduce_sum(per_example * weights)


class Trainer:
    """Runs the remaining steps of one fine-tune; every ``save_checkpoints_steps`` and at the end it saves."""

    def __init__(self, classifier, model, optimizer, step, summaries):
        self.classifier, self.model, self.optimizer, self.step = classifier, model, optimizer, step
        self.options, self.strategy, self.summaries = classifier.options, classifier.strategy, summaries
        self._seen = {'probabilities': [], 'label_ids': [], 'weights': [], 'loss': []}
        self.step_ends: list[float] = []  # perf_counter() after each step, checkpoints and evaluation left out
        self._paused = 0.0

    def run(self, shards, num_examples, dev_shards=None) -> dict | None:
        total, warmup, self.lr = self.classifier.schedule(num_examples)
        start = int(self.step.numpy())
        log.info('training %d examples: %d steps (%d warmup), from step %d, on %d replica(s)', num_examples, total,
                 warmup, start, self.strategy.num_replicas_in_sync)
        best = None
        if start >= total:
            return self._best_entry()
        batches = self.strategy.experimental_distribute_dataset(self._dataset(shards, num_examples, start, total))
        train_step = self._train_step()
        bar = tqdm(total=total, initial=start, unit='step', disable=None, dynamic_ncols=True)
        last_time, last_step = time.perf_counter(), start
        for batch in batches:
            loss, probabilities, label_ids, weights = train_step(batch)
            step = int(self.step.numpy())
            self._remember(loss, probabilities, label_ids, weights)
            rate = float(self.lr(step - 1))
            self.summaries.scalars('train', step, {'loss': float(loss), 'learning_rate': rate})
            now = time.perf_counter()
            self.step_ends.append(now - self._paused)
            bar.update(1)
            bar.set_postfix(loss=f'{float(loss):.4f}', lr=f'{rate:.2e}',
                            ex_s=f'{(step - last_step) * self.options.train_batch_size / (now - last_time):.1f}')
            if step % self.options.save_checkpoints_steps == 0 or step == total:
                best = self._save(step, dev_shards)
                last_time, last_step = time.perf_counter(), step
                self._paused += last_time - now
        bar.close()
        self.summaries.close()
        log.info('trained %d steps, %.1f examples/s', len(self.step_ends), self.examples_per_second())
        return best

    def examples_per_second(self) -> float:
        """Training speed after the first WARMUP_STEPS steps (NaN if there were too few steps)."""
        ends = self.step_ends[WARMUP_STEPS - 1:]
        if len(ends) < 2:
            return float('nan')
        return (len(ends) - 1) * self.options.train_batch_size / (ends[-1] - ends[0])

    def _dataset(self, shards, num_examples, start, total):
        """Shuffled (seeded, so a resumed run sees the same order), repeated, padded batches from ``start``."""
        batch = self.options.train_batch_size
        return (read_records(shards)
                .shuffle(min(num_examples, SHUFFLE_BUFFER), seed=self.options.seed, reshuffle_each_iteration=True)
                .repeat()
                .padded_batch(batch, drop_remainder=True)
                .skip(start).take(total - start)
                .prefetch(tf.data.AUTOTUNE))

    def _train_step(self):
        model, optimizer, strategy = self.model, self.optimizer, self.strategy
        variables = optimizer.variables_in_order
        global_batch = float(self.options.train_batch_size)
        smoothing = self.options.label_smoothing
        seed_option = tf.constant(self.options.seed, tf.int64)

        def replica_step(batch):
            # dropout masks drawn from (seed, step, replica): a resumed run draws the masks it would have drawn
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            seed = tf.random.experimental.stateless_fold_in(tf.stack([seed_option, self.step.read_value()]), replica)
            with tf.GradientTape() as tape:
                logits = model({k: batch[k] for k in FEATURES}, dropout_seed=seed)
                loss = smoothed_loss_sum(logits, batch['label_id'], batch['weight'], smoothing) / global_batch
            grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
            return loss, grads, tf.nn.softmax(logits, axis=-1), batch['label_id'], batch['weight']

        @tf.function(reduce_retracing=True)
        def step_fn(batch):
            loss, grads, probabilities, label_ids, weights = strategy.run(replica_step, args=(batch,))
            loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            grads = [strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in grads]
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
            optimizer.apply(grads, self.lr(self.step))
            self.step.assign_add(1)
            gathered = [strategy.gather(t, axis=0) for t in (probabilities, label_ids, weights)]
            return (loss, *gathered)

        return step_fn

    def _remember(self, loss, probabilities, label_ids, weights):
        for key, value in zip(self._seen, (probabilities, label_ids, weights)):
            self._seen[key].append(value.numpy())
        self._seen['loss'].append(float(loss))

    def _save(self, step, dev_shards):
        name = checkpoints.save(self.classifier.output_dir, step,
                                self.classifier.checkpoint_tensors(self.model, self.optimizer, self.step))
        self._write_train_summaries(step)
        metrics = None
        if dev_shards:
            probabilities, label_ids, weights = self.classifier.probabilities_of(
                dev_shards, self.options.eval_batch_size)
            metrics = classification_metrics(probabilities, label_ids, weights, self.classifier.labels)
            self.summaries.metrics('eval', step, metrics, probabilities, label_ids, self.classifier.labels)
        kept = {k: v for k, v in (metrics or {}).items() if not isinstance(v, (dict, list))}
        best = checkpoints.record_and_prune(self.classifier.output_dir, name, step, kept, self.options.keep_metric,
                                            self.options.keep_checkpoint_max)
        log.info('saved %s%s', name, f' (dev {self.options.keep_metric} {kept.get(self.options.keep_metric)})'
                 if kept else '')
        return best

    def _write_train_summaries(self, step):
        seen = {k: (np.concatenate(v) if k != 'loss' else v) for k, v in self._seen.items()}
        labels = self.classifier.labels
        metrics = classification_metrics(seen['probabilities'], seen['label_ids'], seen['weights'], labels)
        metrics['loss'] = float(np.mean(seen['loss']))  # the smoothed training loss, as optimised
        self.summaries.metrics('train', step, metrics, seen['probabilities'], seen['label_ids'], labels)
        self.summaries.histograms('train', step, {HEAD_WEIGHTS: self.model.output_weights,
                                                  HEAD_BIAS: self.model.output_bias})
        self._seen = {k: [] for k in self._seen}

    def _best_entry(self):
        entries = checkpoints.load_metrics(self.classifier.output_dir)
        return max(entries.values(), key=lambda e: e['step']) if entries else None
