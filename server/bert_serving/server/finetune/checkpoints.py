"""Google-named checkpoints in an output folder: save, restore, keep the best by a metric, list, label files.

A checkpoint ``model.ckpt-STEP`` holds every ``bert/...`` variable, ``output_weights``, ``output_bias``,
``global_step`` and, for resuming, Adam's moments (``<name>/adam_m``, ``<name>/adam_v``) as Google's
``run_classifier.py`` writes them. The ``checkpoint`` index file names the latest; ``checkpoint_metrics.json``
holds the dev metrics of each save and ``best_checkpoint.json`` the best one.
"""
from __future__ import annotations

import glob
import json
import math
import os

import numpy as np

from ..model.tensorflow_quiet import tf

CKPT_PREFIX = 'model.ckpt'
LABELS_FILE = 'labels.txt'
METRICS_FILE = 'checkpoint_metrics.json'
BEST_FILE = 'best_checkpoint.json'
LOWER_IS_BETTER = {'loss'}


class OutputDirError(ValueError):
    """The output folder holds something that does not fit this run (another model, other labels)."""


def checkpoint_name(step: int) -> str:
    return f'{CKPT_PREFIX}-{step}'


def save(out_dir: str, step: int, tensors: dict) -> str:
    """Write ``out_dir/model.ckpt-STEP`` from name -> tensor, atomically (a kill leaves the last one whole)."""
    name = checkpoint_name(step)
    tmp_prefix = os.path.join(out_dir, f'.tmp-{name}')
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=[tensors[n] for n in names])
    for tmp in sorted(glob.glob(tmp_prefix + '.*'), key=lambda p: p.endswith('.index')):  # the index last
        os.replace(tmp, os.path.join(out_dir, name + tmp[len(tmp_prefix):]))
    return name


def read(prefix: str) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint, by name."""
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def shapes(prefix: str) -> dict[str, list[int]]:
    return tf.train.load_checkpoint(prefix).get_variable_to_shape_map()


def latest(out_dir: str) -> str | None:
    """The prefix of the newest checkpoint the index file names, if any."""
    state = tf.train.get_checkpoint_state(out_dir)
    if state is None or not state.model_checkpoint_path:
        return None
    prefix = os.path.join(out_dir, os.path.basename(state.model_checkpoint_path))
    return prefix if os.path.isfile(prefix + '.index') else None


def step_of(prefix: str) -> int:
    return int(prefix.rsplit('-', 1)[1])


def load_metrics(out_dir: str) -> dict:
    path = os.path.join(out_dir, METRICS_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _write_json(path, value):
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=2, default=_json_default)
    os.replace(path + '.tmp', path)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')


def write_json(path: str, value) -> None:
    """Write ``value`` as JSON atomically; NaN becomes null."""
    _write_json(path, _nan_to_none(value))


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _score(metrics: dict, metric: str) -> float:
    value = metrics.get(metric)
    if value is None or math.isnan(value):
        return -math.inf
    return -value if metric in LOWER_IS_BETTER else value


def record_and_prune(out_dir: str, name: str, step: int, metrics: dict | None, keep_metric: str,
                     keep_max: int) -> dict | None:
    """Note a new checkpoint, delete those beyond the best ``keep_max`` (never the newest); the best one's entry."""
    saved = load_metrics(out_dir)
    saved[name] = {'step': step, 'metrics': metrics or {}}
    ranked = sorted(saved, key=lambda n: (_score(saved[n]['metrics'], keep_metric), saved[n]['step']), reverse=True)
    kept = set(ranked[:keep_max]) | {name}
    for dropped in set(saved) - kept:
        for path in glob.glob(os.path.join(out_dir, dropped + '.*')):
            os.remove(path)
        del saved[dropped]
    write_json(os.path.join(out_dir, METRICS_FILE), saved)
    ordered = sorted(saved, key=lambda n: saved[n]['step'])
    _write_index(out_dir, name, ordered)
    if not metrics:
        return None
    best = ranked[0]
    entry = {'name': best, 'step': saved[best]['step'], 'metrics': saved[best]['metrics'], 'keep_metric': keep_metric}
    write_json(os.path.join(out_dir, BEST_FILE), entry)
    return entry


def _write_index(out_dir, newest, names):
    """The ``checkpoint`` file (text protobuf) that tf.train.latest_checkpoint and Google's tools read."""
    lines = [f'model_checkpoint_path: "{newest}"'] + [f'all_model_checkpoint_paths: "{n}"' for n in names]
    path = os.path.join(out_dir, 'checkpoint')
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(path + '.tmp', path)


def ranked_checkpoints(out_dir: str, by_metric: str | None) -> list[str]:
    """Checkpoint names in the folder, newest first, or best first by ``by_metric``."""
    saved = {n: v for n, v in load_metrics(out_dir).items() if os.path.isfile(os.path.join(out_dir, n + '.index'))}
    state = tf.train.get_checkpoint_state(out_dir)
    for path in (state.all_model_checkpoint_paths if state else []):
        name = os.path.basename(path)
        if name not in saved and os.path.isfile(os.path.join(out_dir, name + '.index')):
            saved[name] = {'step': step_of(name), 'metrics': {}}
    if by_metric:
        return sorted(saved, key=lambda n: (_score(saved[n]['metrics'], by_metric), saved[n]['step']), reverse=True)
    return sorted(saved, key=lambda n: saved[n]['step'], reverse=True)


def read_labels(folder: str) -> list[str] | None:
    path = os.path.join(folder, LABELS_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return [line.rstrip('\n') for line in f if line.strip()]


def write_labels(folder: str, labels: list[str]) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LABELS_FILE), 'w', encoding='utf-8', newline='\n') as f:
        f.writelines(label + '\n' for label in labels)


def check_fits(out_dir: str, labels: list[str], expected: dict[str, tuple]) -> None:
    """Raise OutputDirError if ``out_dir`` holds another label set or checkpoints of another model shape."""
    saved_labels = read_labels(out_dir)
    if saved_labels is not None and saved_labels != labels:
        raise OutputDirError(f'{out_dir} holds a model for other labels ({os.path.join(out_dir, LABELS_FILE)}: '
                             f'{saved_labels}, the data: {labels}); use another -output_dir')
    prefix = latest(out_dir)
    if prefix is None:
        return
    found = shapes(prefix)
    for name, shape in expected.items():
        if tuple(found.get(name, ())) != tuple(shape):
            raise OutputDirError(f'{out_dir} holds checkpoints of another model ({prefix}: {name} has shape '
                                 f'{found.get(name, "none")}, this model needs {list(shape)}); use another '
                                 f'-output_dir')
