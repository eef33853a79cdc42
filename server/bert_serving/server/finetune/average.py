"""Average the variables of several checkpoints of one fine-tune into a new checkpoint folder."""
from __future__ import annotations

import json
import os

import numpy as np

from . import checkpoints
from .checkpoints import OutputDirError

SLOT_SUFFIXES = ('/adam_m', '/adam_v')


def kept_metric(model_dir: str) -> str:
    """The -keep_metric the fine-tune ranked by (from best_checkpoint.json)."""
    path = os.path.join(model_dir, checkpoints.BEST_FILE)
    if not os.path.isfile(path):
        raise OutputDirError(f'{path} not found: -by_metric needs a fine-tune that evaluated on dev.tsv')
    with open(path, encoding='utf-8') as f:
        return json.load(f)['keep_metric']


def average_checkpoints(model_dir: str, output_dir: str, max_count: int = 20, by_metric: bool = False) -> dict:
    """Write the mean of the newest (or best) ``max_count`` checkpoints; what was averaged, and where it went."""
    model_dir, output_dir = os.path.abspath(model_dir), os.path.abspath(output_dir)
    if model_dir == output_dir:
        raise OutputDirError('-output_dir must differ from -model_dir (the averaged checkpoint would be '
                             'mistaken for one of the fine-tune)')
    labels = checkpoints.read_labels(model_dir)
    if labels is None:
        raise OutputDirError(f'{os.path.join(model_dir, checkpoints.LABELS_FILE)} not found: -model_dir must be '
                             f'an output folder of bert-serving-finetune')
    names = checkpoints.ranked_checkpoints(model_dir, kept_metric(model_dir) if by_metric else None)[:max_count]
    if not names:
        raise OutputDirError(f'{model_dir} holds no checkpoint (no "checkpoint" index naming model.ckpt-STEP)')
    mean = mean_of([checkpoints.read(os.path.join(model_dir, name)) for name in names])
    step = max(checkpoints.step_of(name) for name in names)
    mean['global_step'] = np.int64(step)
    os.makedirs(output_dir, exist_ok=True)
    name = checkpoints.save(output_dir, step, mean)
    checkpoints.record_and_prune(output_dir, name, step, None, 'accuracy', 1)
    checkpoints.write_labels(output_dir, labels)
    return {'averaged': names, 'checkpoint': os.path.join(output_dir, name)}


def mean_of(tensor_sets: list[dict]) -> dict:
    """Name -> mean over the sets of every float variable they all hold (optimizer slots left out)."""
    first = tensor_sets[0]
    out = {}
    for name, value in first.items():
        if name.endswith(SLOT_SUFFIXES) or name == 'global_step' or not np.issubdtype(value.dtype, np.floating):
            continue
        values = [tensors[name] for tensors in tensor_sets if name in tensors]
        if len(values) != len(tensor_sets) or any(v.shape != value.shape for v in values):
            raise OutputDirError(f'variable {name} is missing from, or has another shape in, some checkpoints')
        out[name] = np.mean(np.stack(values).astype(np.float64), axis=0).astype(value.dtype)
    return out
