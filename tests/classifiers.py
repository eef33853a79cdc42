"""Fine-tuned classifier checkpoints written by the tests, in the format `bert-serving-finetune` writes.

Google's variable names: the encoder (``bert/...``), the head as in ``run_classifier.py`` (``output_weights``
[num_labels, hidden], ``output_bias`` [num_labels]) and ``global_step``, in ``model.ckpt-STEP``, with
``labels.txt`` beside it. The encoder weights differ from the pretrained ones, so a server that ignored the
fine-tuned encoder would give other probabilities.
"""

import json
import subprocess
from pathlib import Path

import numpy as np
import tensorflow as tf

from bert_serving.server.model.checkpoint import random_weights


def write_classifier(out_dir, config, labels, step=7, seed=1, head=True, bert=True, labels_file=True):
    """Write ``out_dir/model.ckpt-STEP`` and ``labels.txt``; return the head as (weights, bias) numpy arrays."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tensors = dict(random_weights(config, seed=seed)) if bert else {}
    weights = rng.standard_normal((len(labels), config.hidden_size)).astype(np.float32)
    bias = (0.5 * rng.standard_normal(len(labels))).astype(np.float32)
    if head:
        tensors.update(output_weights=weights, output_bias=bias)
    names = sorted(tensors)
    constants = [tf.constant(tensors[name]) for name in names]
    tf.raw_ops.SaveV2(prefix=str(out_dir / f'model.ckpt-{step}'), tensor_names=names + ['global_step'],
                      shape_and_slices=[''] * (len(names) + 1), tensors=constants + [tf.constant(step, tf.int64)])
    if labels_file:
        (out_dir / 'labels.txt').write_text(''.join(f'{label}\n' for label in labels), encoding='utf-8')
    return weights, bias


def softmax_head(pooled, weights, bias):
    """softmax(pooled @ weights^T + bias), in float64, written from the formula."""
    logits = np.asarray(pooled, np.float64) @ np.asarray(weights, np.float64).T + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


OLD_CLIENT_ENCODE = ('import json, sys\nfrom bert_serving.client import BertClient\n'
                     'bc = BertClient(port=int(sys.argv[1]), port_out=int(sys.argv[2]), timeout=60000)\n'
                     'print(json.dumps(bc.encode(json.loads(sys.argv[3])).tolist()))\n')


def old_client_encode(python, server, texts, cwd) -> list:
    """What the PyPI 1.10.0 client's ``encode`` returns for ``texts``, with its default checks, as lists."""
    result = subprocess.run([str(python), '-c', OLD_CLIENT_ENCODE, str(server.port), str(server.port_out),
                             json.dumps(texts)], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
