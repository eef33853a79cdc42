"""bert-serving-finetune and bert-serving-average-checkpoints on a tiny random BERT (real files, processes, TF).

One reference run (CLI, one CPU) trains, evaluates and predicts; the other runs repeat its command on two
logical CPU devices (MirroredStrategy) and with a ``kill -9`` in the middle, and must end at the same weights.
The tiny model has dropout 0, so training is deterministic and the runs comparable.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from finetune_data import write_data_dir, write_tsv
from servers import ServerProcess

from bert_serving.server.finetune import cli
from bert_serving.server.finetune.checkpoints import read

pytestmark = pytest.mark.slow

STEPS = 200  # 320 rows / batch 16 * 10 epochs
TRAIN_OPTIONS = ['-max_seq_len', '16', '-train_batch_size', '16', '-learning_rate', '1e-3', '-num_train_epochs', '10',
                 '-save_checkpoints_steps', '20', '-keep_checkpoint_max', '3', '-num_preprocess_workers', '1']
MIRRORED_TOLERANCE = 1e-4  # max |difference| of any variable after 200 steps on 1 vs 2 devices (5e-6 measured)


def finetune_command(model_dir, data_dir, output_dir, *extra) -> list[str]:
    return [sys.executable, '-m', 'bert_serving.server.finetune', '-model_dir', str(model_dir),
            '-data_dir', str(data_dir), '-output_dir', str(output_dir), *TRAIN_OPTIONS, *extra]


def run_finetune(*args, timeout=300) -> str:
    result = subprocess.run(finetune_command(*args), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stderr


@pytest.fixture(scope='module')
def tiny_dir(tiny_model_dirs, tmp_path_factory) -> Path:
    """The tiny Google-layout model with dropout 0 (a deterministic fine-tune)."""
    folder = tmp_path_factory.mktemp('tiny-no-dropout')
    for path in tiny_model_dirs['google'].iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    config = json.loads((folder / 'bert_config.json').read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / 'bert_config.json').write_text(json.dumps(config))
    return folder


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory) -> Path:
    return write_data_dir(tmp_path_factory.mktemp('finetune-data'))


@pytest.fixture(scope='module')
def reference(tiny_dir, data_dir, tmp_path_factory) -> tuple[Path, str]:
    """(output folder, log) of -do_train -do_eval -do_predict on one CPU."""
    out = tmp_path_factory.mktemp('finetune-reference')
    return out, run_finetune(tiny_dir, data_dir, out, '-do_train', '-do_eval', '-do_predict')


def final_weights(output_dir: Path) -> dict:
    return read(str(output_dir / f'model.ckpt-{STEPS}'))


def max_difference(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.abs(a[n].astype(np.float64) - b[n]).max()) for n in a)


def test_training_reaches_the_stated_accuracy_and_writes_every_report(reference, data_dir):
    out, log = reference
    assert (out / 'labels.txt').read_text() == 'bad\ngood\n'
    results = json.loads((out / 'eval_results.json').read_text())
    assert results['accuracy'] >= 0.95, results  # the task is separable: 1.0 measured
    assert results['checkpoint'] == f'model.ckpt-{STEPS}' and results['examples'] == 64
    assert set(results) >= {'precision', 'recall', 'f1', 'auc', 'loss', 'per_label_f1', 'confusion_matrix'}
    assert np.sum(results['confusion_matrix']) == 64
    best = json.loads((out / 'best_checkpoint.json').read_text())
    assert best['keep_metric'] == 'accuracy' and best['metrics']['accuracy'] >= 0.95
    kept = sorted(p.name for p in out.glob('model.ckpt-*.index'))
    assert len(kept) == 3 and f'model.ckpt-{STEPS}.index' in kept and best['name'] + '.index' in kept
    lines = (out / 'predictions.tsv').read_text().splitlines()
    assert lines[0] == 'label\tbad\tgood' and len(lines) == 65
    test_texts = [line for line in (data_dir / 'test.tsv').read_text().splitlines()[1:]]
    expected = ['good' if any(w in text.split() for w in ('good', 'better', 'right', 'hello', 'day', 'fine',
                                                           'first', 'python')) else 'bad' for text in test_texts]
    predicted = [line.split('\t')[0] for line in lines[1:]]
    assert np.mean([p == e for p, e in zip(predicted, expected)]) >= 0.95  # rows in input order
    probabilities = np.array([[float(v) for v in line.split('\t')[1:]] for line in lines[1:]])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_checkpoints_use_google_names_and_shapes(reference, tiny_config):
    weights = final_weights(reference[0])
    assert weights['output_weights'].shape == (2, tiny_config.hidden_size)
    assert weights['output_bias'].shape == (2,)
    assert int(weights['global_step']) == STEPS
    assert weights['bert/encoder/layer_1/attention/self/query/kernel'].shape == (32, 32)
    assert 'bert/pooler/dense/kernel' in weights and 'bert/embeddings/word_embeddings/adam_m' in weights


def test_tensorboard_holds_every_tag(reference):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    runs = {}
    for run in ('train', 'eval'):
        accumulator = EventAccumulator(str(reference[0] / 'tensorboard' / run), size_guidance={'tensors': 0})
        accumulator.Reload()
        runs[run] = set(accumulator.Tags()['tensors'])
    scalars = {'loss', 'accuracy', 'precision', 'recall', 'f1', 'auc', 'confusion_matrix', 'roc_curve'}
    assert runs['train'] >= scalars | {'learning_rate', 'output_weights', 'output_bias'}
    assert runs['eval'] >= scalars


def test_the_checkpoint_loads_in_bert_serving_start(reference, tiny_dir, tmp_path):
    texts = ['good day', 'lazy dog']
    with ServerProcess(tiny_dir, '-max_seq_len', '16', log_dir=tmp_path) as server, server.client() as bc:
        base = bc.encode(texts)
    with ServerProcess(tiny_dir, '-max_seq_len', '16', '-tuned_model_dir', str(reference[0]),
                       '-ckpt_name', f'model.ckpt-{STEPS}', log_dir=tmp_path) as server, \
            server.client() as bc:
        tuned = bc.encode(texts)
    assert tuned.shape == base.shape and not np.allclose(tuned, base, atol=1e-3)


def test_dropout_masks_come_from_the_seed(tiny_model_dirs, tiny_config):
    from bert_serving.server.finetune.modeling import ClassifierModel, initial_head
    from bert_serving.server.model.checkpoint import load_weights, locate_model
    from bert_serving.server.model.tensorflow_quiet import tf

    weights = load_weights(locate_model(str(tiny_model_dirs['google'])), tiny_config)
    model = ClassifierModel(tiny_config, weights, initial_head(2, tiny_config.hidden_size, 0), dropout=(0.3, 0.3))
    features = {'input_ids': tf.constant([[1, 5, 6, 2]] * 2), 'input_mask': tf.ones((2, 4), tf.int32),
                'input_type_ids': tf.zeros((2, 4), tf.int32)}
    seed = tf.constant([7, 1], tf.int64)
    masked, again = model(features, dropout_seed=seed).numpy(), model(features, dropout_seed=seed).numpy()
    other_seed = model(features, dropout_seed=tf.constant([7, 2], tf.int64)).numpy()
    plain = model(features).numpy()
    np.testing.assert_array_equal(masked, again)  # a resumed run draws the masks it would have drawn
    assert not np.allclose(masked[0], masked[1])  # two equal rows, two masks
    assert not np.allclose(masked, other_seed) and not np.allclose(masked, plain)
    # No dropout without a seed: the two rows agree to rounding (oneDNN may sum two equal rows in another order;
    # a dropped unit would move them by far more).
    np.testing.assert_allclose(plain[0], plain[1], rtol=0, atol=1e-6)


def test_dropout_drops_its_rate_and_keeps_the_mean():
    from bert_serving.server.model.bert import StatelessDropout
    from bert_serving.server.model.tensorflow_quiet import tf

    dropout = StatelessDropout(tf.constant([3, 4], tf.int64))
    for shape, rate in (((1000, 999), 0.1), ((7, 5, 3), 0.5)):  # an odd size too
        out = dropout(tf.ones(shape), rate).numpy()
        values = np.unique(out)
        assert out.shape == shape and len(values) == 2 and values[0] == 0
        np.testing.assert_allclose(values[1], 1 / (1 - rate), rtol=1e-4)  # kept values scaled up
    assert abs((out == 0).mean() - 0.5) < 0.2  # 105 draws
    out = dropout(tf.ones((1000, 999)), 0.1).numpy()
    assert abs((out == 0).mean() - 0.1) < 0.002 and abs(out.mean() - 1) < 0.003


def test_the_training_gelu_has_the_values_and_derivative_of_the_inference_one():
    from bert_serving.server.model.bert import _gelu_exact, _gelu_exact_trainable
    from bert_serving.server.model.tensorflow_quiet import tf

    x = tf.constant(np.linspace(-8, 8, 2001), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        served, trained = _gelu_exact(x), _gelu_exact_trainable(x)
    np.testing.assert_array_equal(trained.numpy(), served.numpy())
    np.testing.assert_allclose(tape.gradient(trained, x).numpy(), tape.gradient(served, x).numpy(), atol=1e-6)


def test_mirrored_strategy_on_two_cpus_matches_one(reference, tiny_dir, data_dir, tmp_path):
    log = run_finetune(tiny_dir, data_dir, tmp_path, '-do_train', '-devices', 'cpu:2')
    assert 'on 2 replica(s)' in log
    assert max_difference(final_weights(reference[0]), final_weights(tmp_path)) < MIRRORED_TOLERANCE


def test_a_run_killed_with_sigkill_resumes_where_it_saved(reference, tiny_dir, data_dir, tmp_path):
    process = subprocess.Popen(finetune_command(tiny_dir, data_dir, tmp_path, '-do_train'),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (tmp_path / 'checkpoint').exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = (tmp_path / 'checkpoint').read_text()
    assert f'model.ckpt-{STEPS}"' not in saved, 'the run ended before the kill: nothing was resumed'
    log = run_finetune(tiny_dir, data_dir, tmp_path, '-do_train')
    assert 'restored' in log and 'from step 0' not in log
    assert max_difference(final_weights(reference[0]), final_weights(tmp_path)) < 1e-5


def test_averaging_is_the_mean_of_the_variables(reference, tmp_path, capsys):
    out = reference[0]
    assert cli.average_checkpoints(['-model_dir', str(out), '-output_dir', str(tmp_path), '-max_count', '2']) == 0
    newest = [read(str(out / f'model.ckpt-{step}')) for step in (STEPS - 20, STEPS)]
    averaged = read(str(tmp_path / f'model.ckpt-{STEPS}'))
    for name, value in averaged.items():
        if name != 'global_step':
            np.testing.assert_allclose(value, (newest[0][name] + newest[1][name]) / 2, rtol=1e-6, atol=1e-7)
    assert 'bert/pooler/dense/kernel' in averaged and not any(n.endswith('adam_m') for n in averaged)
    assert (tmp_path / 'labels.txt').read_text() == 'bad\ngood\n'


def bad_input(argv) -> str:
    """The one-line error of a failing bert-serving-finetune call (status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(arg) for arg in argv])
    assert exit_info.value.code == 2
    return exit_info


@pytest.mark.parametrize('row, problem', [
    ('good\tgood day\n', 'line 4: 2 columns, the header has 3'),
    ('good\t \t1.0\n', 'line 4: empty text_a'),
    ('good\tgood day\tmuch\n', "line 4: weight 'much' is not a number"),
    ('good\tgood day\t\n', "line 4: weight '' is not a number"),
    ('\tgood day\t1.0\n', 'line 4: missing label'),
])
def test_a_malformed_training_row_stops_before_training(row, problem, tiny_dir, tmp_path, capsys):
    data = tmp_path / 'data'
    data.mkdir()
    path = write_tsv(data / 'train.tsv', [('good', 'good day'), ('bad', 'lazy dog')])
    with open(path, 'a', encoding='utf-8') as f:
        f.write(row)
    bad_input(['-model_dir', tiny_dir, '-data_dir', data, '-output_dir', tmp_path / 'out', '-do_train'])
    err = capsys.readouterr().err
    assert f'{path}: {problem}' in err and 'Traceback' not in err
    assert not (tmp_path / 'out' / 'checkpoint').exists()


def test_a_dev_label_absent_from_train_stops_or_is_skipped_and_counted(reference, tiny_dir, tmp_path, capsys):
    data = tmp_path / 'data'
    data.mkdir()
    write_tsv(data / 'dev.tsv', [('good', 'good day'), ('ugly', 'lazy dog'), ('bad', 'lazy dog')])
    argv = ['-model_dir', tiny_dir, '-data_dir', data, '-output_dir', reference[0], '-do_eval']
    before = (reference[0] / 'eval_results.json').read_text()
    bad_input(argv + ['-max_seq_len', '16'])
    assert f"{data / 'dev.tsv'}: line 3: label 'ugly' does not occur in train.tsv" in capsys.readouterr().err
    assert (reference[0] / 'eval_results.json').read_text() == before
    try:
        assert cli.main([str(a) for a in argv] + ['-max_seq_len', '16', '-skip_bad_rows']) == 0
        results = json.loads((reference[0] / 'eval_results.json').read_text())
        assert results['skipped_rows'] == {'dev.tsv': 1} and results['examples'] == 2
    finally:
        (reference[0] / 'eval_results.json').write_text(before)


def test_a_vocabulary_that_does_not_fit_the_checkpoint(tiny_dir, data_dir, tmp_path, capsys):
    model = tmp_path / 'model'
    model.mkdir()
    for path in tiny_dir.iterdir():
        (model / path.name).write_bytes(path.read_bytes())
    with open(model / 'vocab.txt', 'a', encoding='utf-8') as f:
        f.write('extra\nwords\n')
    bad_input(['-model_dir', model, '-data_dir', data_dir, '-output_dir', tmp_path / 'out', '-do_train'])
    assert 'the vocabulary does not fit the checkpoint' in capsys.readouterr().err


def test_an_output_dir_of_another_model_or_other_labels(reference, tiny_config, data_dir, tmp_path, capsys):
    from dataclasses import replace

    from conftest import tiny_vocab

    from bert_serving.server.model.checkpoint import random_weights, write_google_model
    other = replace(tiny_config, hidden_size=16, intermediate_size=32)
    write_google_model(tmp_path / 'other', other, random_weights(other), tiny_vocab())
    bad_input(['-model_dir', tmp_path / 'other', '-data_dir', data_dir, '-output_dir', reference[0], '-do_train',
               '-max_seq_len', '16'])
    assert 'holds checkpoints of another model' in capsys.readouterr().err
    relabelled = tmp_path / 'data'
    relabelled.mkdir()
    write_tsv(relabelled / 'train.tsv', [('yes', 'good day'), ('no', 'lazy dog')])
    bad_input(['-model_dir', tmp_path / 'other', '-data_dir', relabelled, '-output_dir', reference[0], '-do_train',
               '-max_seq_len', '16'])
    assert 'holds a model for other labels' in capsys.readouterr().err


def test_two_preprocessing_processes_write_the_same_records_as_one_and_a_rerun_reuses_them(tiny_dir, tmp_path):
    from finetune_data import rows

    from bert_serving.server.finetune.data import InputExample
    from bert_serving.server.finetune.records import MIN_ROWS_FOR_POOL, TokenizerSettings, write_records
    examples = [InputExample(str(n), text, 'lazy dog' if n % 3 else None, label=label, weight=n % 4)
                for n, (label, text) in enumerate(rows(MIN_ROWS_FOR_POOL + 100, seed=5))]
    settings = TokenizerSettings(str(tiny_dir / 'vocab.txt'), True, 16, 64)
    written = {workers: write_records(examples, ['bad', 'good'], settings, str(tmp_path / str(workers)), workers)
               for workers in (1, 2)}
    assert len(written[2]) >= 8  # several chunks per worker

    def records(shards):
        return b''.join(Path(shard).read_bytes() for shard in shards)
    assert records(written[1]) == records(written[2])
    modified = [os.stat(shard).st_mtime_ns for shard in written[2]]
    assert write_records(examples, ['bad', 'good'], settings, str(tmp_path / '2'), 2) == written[2]
    assert [os.stat(shard).st_mtime_ns for shard in written[2]] == modified
