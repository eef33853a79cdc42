"""Serve a fine-tuned checkpoint on top of the pretrained model with -tuned_model_dir and -ckpt_name.

    python example/9_fine_tuned.py [-out DIR] [-port 5555 -port_out 5556]

Fine-tuning BERT (e.g. Google's run_classifier.py) writes checkpoints such as `model.ckpt-343`
holding the updated `bert/...` variables plus its own head (`output_weights`, `global_step`...).
The server loads the pretrained model, then replaces every variable the checkpoint has by name
and ignores the rest. This script writes such a checkpoint itself (the MiniLM weights nudged
slightly, as a few training steps would), encodes the same sentences with the pretrained and
the fine-tuned model, and shows how far the vectors moved. With -port, the running server is
taken as the pretrained one (its model must be -model_dir).
"""

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from bert_serving.server.model.checkpoint import load_config, load_weights, locate_model
from common import bert_server, example_parser

CKPT_NAME = 'model.ckpt-343'
SENTENCES = ['First do it', 'then do it right', 'then do it better', 'The weather is lovely today.']


def write_fine_tuned(model_dir: str, out_dir: Path, scale: float = 0.05, seed: int = 0) -> Path:
    """Write ``out_dir/model.ckpt-343``: the encoder weights plus noise of ``scale`` times each one's spread."""
    files = locate_model(model_dir)
    weights = load_weights(files, load_config(files))
    rng = np.random.default_rng(seed)
    tuned = {name: (value + scale * value.std() * rng.standard_normal(value.shape)).astype(np.float32)
             for name, value in weights.items() if name.startswith('bert/encoder/')}
    hidden = weights['bert/pooler/dense/bias'].shape[0]
    tensors = {**{name: tf.constant(value) for name, value in tuned.items()},
               'output_weights': tf.constant(rng.standard_normal((2, hidden)).astype(np.float32)),
               'output_bias': tf.zeros([2]),
               'global_step': tf.constant(343, tf.int64)}
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(out_dir / CKPT_NAME), tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=[tensors[name] for name in names])
    print(f'wrote {out_dir / CKPT_NAME} ({len(tuned)} fine-tuned BERT variables and a classifier head)')
    return out_dir


def encode(server_context) -> np.ndarray:
    with server_context as server, server.client() as client:
        return client.encode(SENTENCES)


def main() -> None:
    parser = example_parser(__doc__)
    parser.add_argument('-out', type=Path, help='folder for the checkpoint (default: a temporary one)')
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tuned_dir = write_fine_tuned(options.model_dir, options.out or Path(scratch))
        base = encode(bert_server(options))
        tuned = encode(bert_server(options, '-tuned_model_dir', str(tuned_dir), '-ckpt_name', CKPT_NAME,
                                   reuse=False))

    print(f'pretrained vectors {base.shape}, fine-tuned vectors {tuned.shape}')
    cosine = (base * tuned).sum(axis=1) / (np.linalg.norm(base, axis=1) * np.linalg.norm(tuned, axis=1))
    for sentence, similarity in zip(SENTENCES, cosine):
        print(f'  cosine(pretrained, fine-tuned) = {similarity:.4f}  {sentence!r}')
    print(f'max |fine-tuned - pretrained| = {np.abs(tuned - base).max():.4f}')
    print(f'the fine-tuned vectors differ: {not np.allclose(base, tuned, atol=1e-4)}')


if __name__ == '__main__':
    main()
