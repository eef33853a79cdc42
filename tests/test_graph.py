"""The serving graph on the tiny random BERT: forward pass vs a NumPy reference, pooling, options, the file."""
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from bert_serving.server.model.checkpoint import locate_model, random_weights
from bert_serving.server.model.graph import (INPUT_NAMES, LARGE_PASS_OUTPUT, LARGE_PASS_TOKENS, OUTPUT_NAME, OUTPUTS,
                                             FrozenGraphRunner, GraphOptions, build_frozen_graph)
from bert_serving.server.model.strategy import PoolingStrategy

CLS, SEP = 2, 3  # ids in conftest.tiny_vocab()
S = PoolingStrategy


# NumPy reference of the BERT forward pass, written from the formulas rather than from the implementation.

_erf = np.vectorize(math.erf)


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps) * gamma + beta


def reference_forward(config, w, ids, mask, types, positions=True):
    """Every encoder layer's output [B, L, H] and the pooler output, in float64."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    x = w['bert/embeddings/word_embeddings'][ids] + w['bert/embeddings/token_type_embeddings'][types]
    if positions:
        x = x + w['bert/embeddings/position_embeddings'][:ids.shape[1]]
    x = _layer_norm(x, w['bert/embeddings/LayerNorm/gamma'], w['bert/embeddings/LayerNorm/beta'], config.layer_norm_eps)
    heads, size = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    batch, length = ids.shape
    layers = []
    for n in range(config.num_hidden_layers):
        p = f'bert/encoder/layer_{n}/'

        def dense(t, name):
            return t @ w[p + name + '/kernel'] + w[p + name + '/bias']

        def split(t):
            return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

        q, k, v = (split(dense(x, f'attention/self/{name}')) for name in ('query', 'key', 'value'))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + (1.0 - mask[:, None, None, :]) * -10000.0
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
        x = _layer_norm(dense(context, 'attention/output/dense') + x, w[p + 'attention/output/LayerNorm/gamma'],
                        w[p + 'attention/output/LayerNorm/beta'], config.layer_norm_eps)
        hidden = dense(x, 'intermediate/dense')
        hidden = 0.5 * hidden * (1.0 + _erf(hidden / math.sqrt(2.0)))
        x = _layer_norm(dense(hidden, 'output/dense') + x, w[p + 'output/LayerNorm/gamma'],
                        w[p + 'output/LayerNorm/beta'], config.layer_norm_eps)
        layers.append(x)
    pooled = np.tanh(x[:, 0] @ w['bert/pooler/dense/kernel'] + w['bert/pooler/dense/bias'])
    return layers, pooled


def batch():
    """Three rows of different lengths (one a pair), padded to 9."""
    ids = np.array([[CLS, 60, 61, 62, SEP, 0, 0, 0, 0],
                    [CLS, 63, SEP, 64, 65, 66, 67, SEP, 0],
                    [CLS, 70, 71, 72, 73, 74, 75, 76, SEP]], np.int32)
    mask = (ids != 0).astype(np.int32)
    types = np.zeros_like(ids)
    types[1, 3:8] = 1
    return ids, mask, types


@pytest.fixture(scope='session')
def tiny_graph(tiny_model_dirs, tmp_path_factory):
    """Factory ``(layout='hf', **GraphOptions fields) -> FrozenGraphRunner``, each built once per session."""
    graph_dir = tmp_path_factory.mktemp('tiny-graphs')
    runners = {}

    def make(layout='hf', xla=False, **options):
        key = (layout, xla, tuple(sorted(options.items())))
        if key not in runners:
            path = build_frozen_graph(locate_model(tiny_model_dirs[layout]), GraphOptions(**options), str(graph_dir))
            runners[key] = FrozenGraphRunner(path, xla=xla)
        return runners[key]

    return make


@pytest.fixture(scope='module')
def reference(tiny_config):
    ids, mask, types = batch()
    layers, pooled = reference_forward(tiny_config, random_weights(tiny_config, seed=0), ids, mask, types)
    return layers, pooled, mask.astype(np.float64)[:, :, None]


# forward pass and pooling

def test_token_vectors_of_every_layer_match_the_reference(tiny_graph, reference):
    layers, _, m = reference
    for index, expected in ((0, layers[0]), (1, layers[1]), (-1, layers[1]), (-2, layers[0])):
        out = tiny_graph(pooling_strategy=S.NONE, pooling_layer=(index,)).run(*batch())
        assert out.dtype == np.float32 and out.shape == (3, 9, 32)
        np.testing.assert_allclose(out, expected * m, atol=2e-5, err_msg=f'layer {index}')


def test_large_passes_fetch_the_batch_norm_layer_norm_and_match_the_reference(tiny_graph, tiny_config):
    ids, mask, types = (np.tile(a, (10, 1)) for a in batch())  # 30 rows x 9 = 270 tokens
    assert ids.size >= LARGE_PASS_TOKENS
    runner = tiny_graph(pooling_strategy=S.NONE, pooling_layer=(-1,))
    assert runner.output_for(*ids.shape) == LARGE_PASS_OUTPUT
    assert runner.output_for(*batch()[0].shape) == OUTPUT_NAME
    assert tiny_graph(xla=True).output_for(*ids.shape) == OUTPUT_NAME  # XLA fuses LayerNorm itself
    layers, _ = reference_forward(tiny_config, random_weights(tiny_config, seed=0), ids, mask, types)
    np.testing.assert_allclose(runner.run(ids, mask, types), layers[-1] * mask[:, :, None], atol=2e-5)


@pytest.mark.parametrize('strategy', ['REDUCE_MEAN', 'REDUCE_MAX', 'REDUCE_MEAN_MAX', 'FIRST_TOKEN', 'LAST_TOKEN',
                                      'CLS_POOLED'])
def test_pooling_strategies_match_the_formulas(strategy, tiny_graph, reference):
    layers, pooled, m = reference
    h = np.concatenate([layers[1], layers[0]], axis=-1)  # pooling_layer (-1, -2): concatenated in that order
    last = batch()[1].sum(1) - 1
    expected = {
        'REDUCE_MEAN': (h * m).sum(1) / (m.sum(1) + 1e-10),
        'REDUCE_MAX': (h - (1 - m) * 1e30).max(1),
        'FIRST_TOKEN': h[:, 0],
        'LAST_TOKEN': h[np.arange(3), last],
        'CLS_POOLED': pooled,
    }
    expected['REDUCE_MEAN_MAX'] = np.concatenate([expected['REDUCE_MEAN'], expected['REDUCE_MAX']], -1)
    out = tiny_graph(pooling_strategy=S.from_string(strategy), pooling_layer=(-1, -2)).run(*batch())
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected[strategy], atol=2e-5)


def test_cls_pooled_ignores_the_pooling_layer(tiny_model_dirs, tiny_graph, tmp_path):
    files = locate_model(tiny_model_dirs['hf'])
    path = build_frozen_graph(files, GraphOptions(S.CLS_POOLED, pooling_layer=(7,)), str(tmp_path))
    np.testing.assert_array_equal(FrozenGraphRunner(path).run(*batch()),
                                  tiny_graph(pooling_strategy=S.CLS_POOLED, pooling_layer=(-1, -2)).run(*batch()))


def test_mask_cls_sep_removes_special_tokens_from_pooling(tiny_graph, reference):
    layers, _, _ = reference
    ids, mask, _ = batch()
    m = (mask * ~np.isin(ids, [CLS, SEP])).astype(np.float64)[:, :, None]
    h = layers[0]
    options = dict(pooling_layer=(-2,), mask_cls_sep=True, special_token_ids=(CLS, SEP))
    mean = tiny_graph(pooling_strategy=S.REDUCE_MEAN, **options).run(*batch())
    np.testing.assert_allclose(mean, (h * m).sum(1) / m.sum(1), atol=2e-5)
    maximum = tiny_graph(pooling_strategy=S.REDUCE_MAX, **options).run(*batch())
    np.testing.assert_allclose(maximum, (h - (1 - m) * 1e30).max(1), atol=2e-5)
    tokens = tiny_graph(pooling_strategy=S.NONE, **options).run(*batch())
    np.testing.assert_allclose(tokens, h * m, atol=2e-5)
    assert np.all(tokens[1, [0, 2, 7]] == 0)  # [CLS] and both [SEP] of the pair
    assert np.all(tiny_graph(pooling_strategy=S.FIRST_TOKEN, **options).run(*batch()) == 0)
    # without the option the special ids count
    assert not np.allclose(tiny_graph(pooling_strategy=S.REDUCE_MEAN, pooling_layer=(-2,)).run(*batch()), mean)


def packed_batch():
    """The three rows of ``batch()`` packed into two: the long one alone, the short one and the pair together,
    in the order (row 0: sentence 1, row 1: sentences 1 and 2) that puts them at outputs 0, 2 and 3."""
    ids, mask, types = batch()
    packed = [np.zeros((2, 13), np.int32) for _ in range(3)]
    for row, at, source, number in ((0, 0, 2, 1), (1, 0, 0, 1), (1, 5, 1, 2)):
        n = mask[source].sum()
        for array, values in zip(packed, (ids[source], np.full(n, number), types[source])):
            array[row, at:at + n] = values[:n]
    return packed, [2, 0, 1]


@pytest.mark.parametrize('strategy', ['REDUCE_MEAN', 'REDUCE_MAX', 'REDUCE_MEAN_MAX', 'FIRST_TOKEN', 'LAST_TOKEN',
                                      'CLS_POOLED'])
@pytest.mark.parametrize('mask_cls_sep', [False, True])
def test_sentences_packed_in_one_row_get_the_vectors_they_get_alone(strategy, mask_cls_sep, tiny_graph):
    runner = tiny_graph(pooling_strategy=S.from_string(strategy), pooling_layer=(-1, -2), mask_cls_sep=mask_cls_sep,
                        special_token_ids=(CLS, SEP))
    inputs, sources = packed_batch()
    out = runner.run(*inputs, sentences_per_row=2)
    assert out.shape[0] == 4  # two rows x two slots; slot 1 of row 0 is empty
    np.testing.assert_allclose(out[[0, 2, 3]], runner.run(*batch())[sources], atol=1e-5)


def test_no_position_embeddings(tiny_config, tiny_graph):
    ids, mask, types = batch()
    layers, _ = reference_forward(tiny_config, random_weights(tiny_config, seed=0), ids, mask, types, positions=False)
    out = tiny_graph(pooling_strategy=S.NONE, pooling_layer=(-1,), no_position_embeddings=True).run(ids, mask, types)
    np.testing.assert_allclose(out, layers[1] * mask[:, :, None], atol=2e-5)


def test_dynamic_batch_and_length(tiny_graph):
    runner = tiny_graph(pooling_strategy=S.REDUCE_MEAN, pooling_layer=(-2,))
    ids, mask, types = batch()
    full = runner.run(ids, mask, types)
    np.testing.assert_allclose(runner.run(ids[:1, :5], mask[:1, :5], types[:1, :5]), full[:1], atol=1e-5)
    for extra in (20, 71):  # 71: rows of 80, wider than the model's 64 positions, as a rounded-up chunk may be
        wide = [np.pad(a, ((0, 0), (0, extra))) for a in (ids, mask, types)]
        np.testing.assert_allclose(runner.run(*wide), full, atol=1e-5)


# layers

@pytest.mark.parametrize('layers', [(2,), (-3,), (-1, 5)])
def test_pooling_layer_out_of_range_lists_the_valid_range(layers, tiny_model_dirs, tmp_path):
    with pytest.raises(ValueError, match=r'-2\.\.-1 or 0\.\.1'):
        build_frozen_graph(locate_model(tiny_model_dirs['hf']), GraphOptions(pooling_layer=layers), str(tmp_path))
    assert not list(tmp_path.iterdir())


# layouts, fine-tuning, precision, XLA

def test_both_layouts_give_the_same_vectors(tiny_graph):
    np.testing.assert_array_equal(tiny_graph('hf', pooling_strategy=S.REDUCE_MEAN_MAX).run(*batch()),
                                  tiny_graph('google', pooling_strategy=S.REDUCE_MEAN_MAX).run(*batch()))


def test_tuned_checkpoint_changes_the_output(tiny_config, tiny_model_dirs, tiny_graph, tmp_path):
    weights = random_weights(tiny_config, seed=1)
    tuned = {k: v for k, v in weights.items() if '/layer_1/' in k}
    names = sorted(tuned)
    tf.raw_ops.SaveV2(prefix=str(tmp_path / 'model.ckpt-343'), tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=[tf.constant(tuned[n]) for n in names])
    files = locate_model(tiny_model_dirs['hf'], ckpt_name='model.ckpt-343', tuned_model_dir=tmp_path)
    options = GraphOptions(S.NONE, pooling_layer=(0, 1))
    out = FrozenGraphRunner(build_frozen_graph(files, options, str(tmp_path))).run(*batch())
    base = tiny_graph(pooling_strategy=S.NONE, pooling_layer=(0, 1)).run(*batch())
    np.testing.assert_array_equal(out[..., :32], base[..., :32])  # layer 0 kept its pretrained weights
    assert np.abs(out[..., 32:] - base[..., 32:]).max() > 0.1  # layer 1 took the tuned ones
    ids, mask, types = batch()
    merged = dict(random_weights(tiny_config, seed=0), **tuned)
    layers, _ = reference_forward(tiny_config, merged, ids, mask, types)
    np.testing.assert_allclose(out[..., 32:], layers[1] * mask[:, :, None], atol=2e-5)


@pytest.mark.parametrize('strategy', ['REDUCE_MEAN', 'NONE', 'CLS_POOLED'])
def test_fp16_agrees_with_fp32(strategy, tiny_graph):
    half = tiny_graph(pooling_strategy=S.from_string(strategy), fp16=True)
    out = half.run(*batch())
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, tiny_graph(pooling_strategy=S.from_string(strategy)).run(*batch()), atol=1e-2)


def test_fp16_graph_file_holds_float16_kernels(tiny_model_dirs, tmp_path):
    path = build_frozen_graph(locate_model(tiny_model_dirs['hf']), GraphOptions(fp16=True), str(tmp_path))
    graph_def = tf.compat.v1.GraphDef.FromString(open(path, 'rb').read())
    big = [n.attr['value'].tensor.dtype for n in graph_def.node
           if n.op == 'Const' and len(n.attr['value'].tensor.tensor_content) > 1024]
    assert big and all(dtype == tf.float16.as_datatype_enum for dtype in big)


@pytest.mark.parametrize('strategy', ['REDUCE_MEAN', 'NONE'])
def test_xla_agrees_with_the_default_runtime(strategy, tiny_graph):
    xla = tiny_graph(xla=True, pooling_strategy=S.from_string(strategy)).run(*batch())
    np.testing.assert_allclose(xla, tiny_graph(pooling_strategy=S.from_string(strategy)).run(*batch()), atol=1e-5)
    fp16_xla = tiny_graph(xla=True, fp16=True, pooling_strategy=S.from_string(strategy)).run(*batch())
    np.testing.assert_allclose(fp16_xla, xla, atol=1e-2)


# the written file

def test_graph_file_is_frozen_named_and_device_free(tiny_model_dirs, tmp_path):
    path = build_frozen_graph(locate_model(tiny_model_dirs['google']), GraphOptions(), str(tmp_path / 'new'))
    assert path.startswith(str(tmp_path / 'new'))
    graph_def = tf.compat.v1.GraphDef.FromString(open(path, 'rb').read())
    ops = [n.op for n in graph_def.node]
    assert not set(ops) & {'VarHandleOp', 'ReadVariableOp', 'VariableV2', 'StopGradient'}
    assert [n.name for n in graph_def.node if n.op == 'Identity'] == list(OUTPUTS)
    assert sorted(n.name for n in graph_def.node if n.op == 'Placeholder') == sorted(INPUT_NAMES)
    assert all(not n.device for n in graph_def.node)
    # pooling layer -2 of 2: only layer 0's six dense layers remain (once per output); the last layer and the pooler
    # are pruned
    assert ops.count('MatMul') == 12 and 'Tanh' not in ops


def test_default_graph_dir_is_a_temp_dir(tiny_model_dirs):
    import os
    import tempfile
    path = build_frozen_graph(locate_model(tiny_model_dirs['hf']), replace(GraphOptions(), pooling_layer=(0,)))
    try:
        assert os.path.dirname(path) == tempfile.gettempdir()
    finally:
        os.remove(path)


def test_select_device_cpu_in_a_fresh_process():
    code = ('from bert_serving.server.model.graph import select_device\n'
            'import tensorflow as tf\n'
            'print(select_device(None, 0.5), len(tf.config.get_visible_devices("GPU")), tf.zeros(1).device)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    device, gpus, placed = out.stdout.split()
    assert (device, gpus) == ('/CPU:0', '0') and placed.endswith('CPU:0')
