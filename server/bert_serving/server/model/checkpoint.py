"""Locate, load, validate and write BERT model folders (Google TF checkpoint or Hugging Face safetensors).

Weights travel as a dict of float32 numpy arrays keyed by Google's variable names
(``bert/encoder/layer_0/attention/self/query/kernel``, kernels shaped [in, out]).
TensorFlow is imported inside the functions that need it: the CLI calls ``locate_model`` before any worker
starts and must stay light.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import numpy as np

from .config import BertConfig

GOOGLE_CKPT_NAME = 'bert_model.ckpt'
HF_CONFIG_NAME = 'config.json'
HF_WEIGHTS_NAME = 'model.safetensors'
VOCAB_NAME = 'vocab.txt'


class ModelFileError(ValueError):
    """A model file is missing or does not hold what the config implies; the message names the file."""


@dataclass(frozen=True)
class ModelFiles:
    """Where a model's pieces live. ``weights_path`` is a checkpoint prefix (google) or a .safetensors file (hf)."""
    layout: str
    model_dir: str
    config_path: str
    vocab_path: str
    weights_path: str
    tuned_ckpt_prefix: str | None = None


def locate_model(model_dir, config_name='bert_config.json', ckpt_name=GOOGLE_CKPT_NAME,
                 tuned_model_dir=None) -> ModelFiles:
    """Find a model's files: Google layout if ``config_name`` and the checkpoint index exist, else HF layout.

    With ``tuned_model_dir`` the checkpoint ``tuned_model_dir/ckpt_name`` overrides the pretrained weights; the
    pretrained checkpoint is then ``model_dir/ckpt_name`` when present, else ``model_dir/bert_model.ckpt``.
    """
    model_dir = os.path.abspath(os.fspath(model_dir))
    if not os.path.isdir(model_dir):
        raise ModelFileError(f'model_dir {model_dir} does not exist or is not a folder')

    tuned_prefix = None
    if tuned_model_dir is not None:
        tuned_prefix = os.path.join(os.path.abspath(os.fspath(tuned_model_dir)), ckpt_name)
        if not os.path.isfile(tuned_prefix + '.index'):
            raise ModelFileError(f'fine-tuned checkpoint {tuned_prefix}.index not found '
                                 f'(expected -tuned_model_dir/-ckpt_name to name a TF checkpoint)')

    def path(name):
        return os.path.join(model_dir, name)

    vocab_path = path(VOCAB_NAME)
    google_config = path(config_name)
    ckpt_candidates = [ckpt_name] if tuned_prefix is None else list(dict.fromkeys([ckpt_name, GOOGLE_CKPT_NAME]))
    ckpt_prefix = next((path(c) for c in ckpt_candidates if os.path.isfile(path(c) + '.index')), None)
    if os.path.isfile(google_config) and ckpt_prefix is not None:
        _require_file(vocab_path, 'the WordPiece vocabulary')
        return ModelFiles('google', model_dir, google_config, vocab_path, ckpt_prefix, tuned_prefix)

    weights_path = path(HF_WEIGHTS_NAME)
    if os.path.isfile(weights_path):
        # An HF folder has config.json; an explicitly named config in the folder takes precedence.
        config_path = google_config if os.path.isfile(google_config) else path(HF_CONFIG_NAME)
        _require_file(config_path, 'the model config (JSON)')
        _require_file(vocab_path, 'the WordPiece vocabulary')
        return ModelFiles('hf', model_dir, config_path, vocab_path, weights_path, tuned_prefix)

    google_missing = [p for p in (google_config, path(ckpt_candidates[0]) + '.index') if not os.path.isfile(p)]
    raise ModelFileError(
        f'{model_dir} is not a BERT model folder: a Google checkpoint folder needs {config_name}, '
        f'{ckpt_candidates[0]}.index/.data-* and {VOCAB_NAME} (missing {", ".join(google_missing)}); '
        f'a Hugging Face folder needs {HF_CONFIG_NAME}, {VOCAB_NAME} and {HF_WEIGHTS_NAME} (missing {weights_path})')


def _require_file(path, what):
    if not os.path.isfile(path):
        raise ModelFileError(f'{path} not found (expected {what})')


def load_config(files: ModelFiles) -> BertConfig:
    """The config of a located model; an unreadable or incomplete config raises ModelFileError."""
    try:
        return BertConfig.from_json_file(files.config_path)
    except OSError as e:
        raise ModelFileError(f'{files.config_path}: cannot read ({e})') from None
    except ValueError as e:
        raise ModelFileError(str(e)) from None


def expected_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """Google variable name -> shape, for every tensor the forward pass and pooler read."""
    h, i = config.hidden_size, config.intermediate_size
    shapes = {
        'bert/embeddings/word_embeddings': (config.vocab_size, h),
        'bert/embeddings/token_type_embeddings': (config.type_vocab_size, h),
        'bert/embeddings/position_embeddings': (config.max_position_embeddings, h),
        'bert/embeddings/LayerNorm/gamma': (h,),
        'bert/embeddings/LayerNorm/beta': (h,),
    }
    for n in range(config.num_hidden_layers):
        p = f'bert/encoder/layer_{n}/'
        for name in ('query', 'key', 'value'):
            shapes[f'{p}attention/self/{name}/kernel'] = (h, h)
            shapes[f'{p}attention/self/{name}/bias'] = (h,)
        shapes.update({
            f'{p}attention/output/dense/kernel': (h, h),
            f'{p}attention/output/dense/bias': (h,),
            f'{p}attention/output/LayerNorm/gamma': (h,),
            f'{p}attention/output/LayerNorm/beta': (h,),
            f'{p}intermediate/dense/kernel': (h, i),
            f'{p}intermediate/dense/bias': (i,),
            f'{p}output/dense/kernel': (i, h),
            f'{p}output/dense/bias': (h,),
            f'{p}output/LayerNorm/gamma': (h,),
            f'{p}output/LayerNorm/beta': (h,),
        })
    shapes['bert/pooler/dense/kernel'] = (h, h)
    shapes['bert/pooler/dense/bias'] = (h,)
    return shapes


def hf_names(google_name: str) -> tuple[list[str], bool]:
    """HF names a Google variable may be stored under (first = the canonical one), and whether to transpose."""
    base = google_name.removeprefix('bert/')
    base = re.sub(r'layer_(\d+)', r'layer.\1', base).replace('/', '.')
    stem, leaf = base.rsplit('.', 1)
    if leaf == 'kernel':
        suffixes, transpose = ['weight'], True
    elif leaf == 'gamma':
        suffixes, transpose = ['weight', 'gamma'], False
    elif leaf == 'beta':
        suffixes, transpose = ['bias', 'beta'], False
    elif leaf == 'bias':
        suffixes, transpose = ['bias'], False
    else:  # embedding tables: the whole path is the stem
        stem, suffixes, transpose = base, ['weight'], False
    names = [f'{stem}.{s}' for s in suffixes]
    return names + ['bert.' + n for n in names], transpose


def load_weights(files: ModelFiles, config: BertConfig) -> dict[str, np.ndarray]:
    """Every tensor the model needs, Google-named float32, validated against ``config``; tuned vars override."""
    shapes = expected_shapes(config)
    if files.layout == 'google':
        weights = read_checkpoint_tensors(files.weights_path, shapes, required=True)
    elif files.layout == 'hf':
        weights = _read_safetensors(files.weights_path, shapes)
    else:
        raise ValueError(f'unknown model layout {files.layout!r}')
    if files.tuned_ckpt_prefix:
        weights.update(read_checkpoint_tensors(files.tuned_ckpt_prefix, shapes, required=False))
    return weights


def _check_shape(path, name, array_shape, expected):
    if tuple(array_shape) != tuple(expected):
        raise ModelFileError(f'{path}: tensor {name} has shape {tuple(array_shape)}, '
                             f'expected {tuple(expected)} from the model config')


def read_checkpoint_tensors(prefix, shapes, required):
    """The tensors of a TF checkpoint named in ``shapes`` (name -> shape), float32; shapes are checked.

    A name the checkpoint lacks raises ModelFileError when ``required``, else is left out.
    """
    from .tensorflow_quiet import tf
    out = {}
    try:
        reader = tf.train.load_checkpoint(prefix)
        available = reader.get_variable_to_shape_map()
        for name, shape in shapes.items():
            if name not in available:
                if required:
                    raise ModelFileError(f'{prefix}: tensor {name} not found in the checkpoint '
                                         f'(expected shape {shape})')
                continue
            _check_shape(prefix, name, available[name], shape)
            out[name] = np.asarray(reader.get_tensor(name), dtype=np.float32)
    except (tf.errors.OpError, ValueError) as e:  # unreadable index, missing or truncated data file
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(f'{prefix}: cannot read TF checkpoint ({e})') from None
    return out


def _read_safetensors(path, shapes):
    from safetensors import SafetensorError, safe_open
    out = {}
    try:
        with safe_open(path, framework='np') as f:
            available = set(f.keys())
            for name, shape in shapes.items():
                candidates, transpose = hf_names(name)
                key = next((c for c in candidates if c in available), None)
                if key is None:
                    raise ModelFileError(f'{path}: tensor {candidates[0]} (Google name {name}) not found '
                                         f'(expected shape {shape[::-1] if transpose else shape})')
                array = f.get_tensor(key)
                _check_shape(path, key, array.shape, shape[::-1] if transpose else shape)
                out[name] = np.ascontiguousarray(array.T if transpose else array, dtype=np.float32)
    except SafetensorError as e:
        raise ModelFileError(f'{path}: cannot read safetensors file ({e})') from None
    return out


def _write_vocab(out_dir, vocab_tokens):
    with open(os.path.join(out_dir, VOCAB_NAME), 'w', encoding='utf-8', newline='\n') as f:
        f.writelines(t + '\n' for t in vocab_tokens)


def _check_weights(config, weights):
    for name, shape in expected_shapes(config).items():
        if name not in weights:
            raise ValueError(f'weights lack tensor {name}')
        if tuple(weights[name].shape) != shape:
            raise ValueError(f'tensor {name} has shape {weights[name].shape}, expected {shape}')


def write_google_model(out_dir, config: BertConfig, weights, vocab_tokens: list[str]) -> None:
    """Write bert_config.json, vocab.txt and bert_model.ckpt.{index,data-00000-of-00001} with Google's names."""
    from .tensorflow_quiet import tf
    _check_weights(config, weights)
    os.makedirs(out_dir, exist_ok=True)
    # Google's file also lists dropout and init settings; tools that read it expect them.
    google_config = dict(config.to_dict(), attention_probs_dropout_prob=0.1, hidden_dropout_prob=0.1,
                         initializer_range=0.02)
    with open(os.path.join(out_dir, 'bert_config.json'), 'w', encoding='utf-8') as f:
        json.dump(google_config, f, indent=2)
    _write_vocab(out_dir, vocab_tokens)
    names = sorted(weights)
    tf.raw_ops.SaveV2(prefix=os.path.join(out_dir, GOOGLE_CKPT_NAME), tensor_names=names,
                      shape_and_slices=[''] * len(names),
                      tensors=[tf.constant(weights[n], dtype=tf.float32) for n in names])


def write_hf_model(out_dir, config: BertConfig, weights, vocab_tokens: list[str]) -> None:
    """Write config.json, vocab.txt and model.safetensors with HF names (Linear weights transposed)."""
    from safetensors.numpy import save_file
    _check_weights(config, weights)
    os.makedirs(out_dir, exist_ok=True)
    hf_config = dict(config.to_dict(), model_type='bert', architectures=['BertModel'])
    with open(os.path.join(out_dir, HF_CONFIG_NAME), 'w', encoding='utf-8') as f:
        json.dump(hf_config, f, indent=2)
    _write_vocab(out_dir, vocab_tokens)
    tensors = {}
    for name in expected_shapes(config):
        candidates, transpose = hf_names(name)
        array = np.asarray(weights[name], dtype=np.float32)
        tensors[candidates[0]] = np.ascontiguousarray(array.T if transpose else array)
    save_file(tensors, os.path.join(out_dir, HF_WEIGHTS_NAME))


def random_weights(config: BertConfig, seed=0) -> dict[str, np.ndarray]:
    """Random weights of the right shapes; LayerNorm scales and biases are perturbed too, so a mix-up shows."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_shapes(config).items():
        if name.endswith('/gamma'):
            array = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith(('/beta', '/bias')):
            array = 0.1 * rng.standard_normal(shape)
        else:
            array = 0.2 * rng.standard_normal(shape)
        out[name] = array.astype(np.float32)
    return out
