"""MiniLM (both layouts) against the golden vectors of a reference PyTorch BERT, end to end through the encoder."""
import json

import numpy as np
import pytest

from bert_serving.server.model.encoder import SentenceEncoder
from bert_serving.server.model.features import FeatureBuilder
from bert_serving.server.model.graph import LARGE_PASS_OUTPUT, FrozenGraphRunner
from bert_serving.server.model.strategy import PoolingStrategy
from bert_serving.server.model.tokenization import FullTokenizer

pytestmark = pytest.mark.slow

STRATEGIES = ('REDUCE_MEAN', 'REDUCE_MAX', 'REDUCE_MEAN_MAX', 'CLS_TOKEN', 'SEP_TOKEN', 'NONE')
LAYER_SETS = {'-2': (-2,), '-1': (-1,), '-1_-2': (-1, -2), '-6': (-6,)}
TOLERANCE = 1e-4


def golden_tokens(golden):
    return json.loads(str(golden['tokens']))


def test_golden_file_has_every_combination(golden):
    assert int(golden['max_seq_len']) == 25
    expected = {f'{s}__{layers}' for s in STRATEGIES for layers in LAYER_SETS}
    assert expected <= set(golden.files)


# Every combination on the HF layout (what prepare_model writes by default). On the Google layout each strategy once,
# the four layer sets in turn: it differs only in how the weights are read, and test_checkpoint shows both layouts
# load bit-identical weights, so the other 18 combinations cannot differ (running them too doubles this file's time).
COMBINATIONS = [('hf', s, layers) for s in STRATEGIES for layers in LAYER_SETS] + \
               [('google', s, list(LAYER_SETS)[i % 4]) for i, s in enumerate(STRATEGIES)]


@pytest.mark.parametrize('layout,strategy,layers', COMBINATIONS)
def test_golden_array_end_to_end(layout, strategy, layers, minilm_graph, minilm_dir, golden):
    encoder = SentenceEncoder(minilm_graph(layout, strategy, LAYER_SETS[layers]), str(minilm_dir / 'vocab.txt'), 25,
                              pooling_strategy=PoolingStrategy.from_string(strategy))
    vectors, tokens = encoder.encode([str(t) for t in golden['texts']])
    assert tokens == golden_tokens(golden)
    expected = golden[f'{strategy}__{layers}']
    assert vectors.dtype == np.float32 and vectors.shape == expected.shape
    diff = float(np.abs(vectors - expected).max())
    assert diff <= TOLERANCE, f'max abs diff {diff}'


@pytest.mark.parametrize('strategy', [s for s in STRATEGIES if s != 'NONE'])
def test_golden_array_in_large_passes(strategy, minilm_graph, minilm_dir, golden):
    """The texts four times over: packed passes of hundreds of tokens, which fetch the graph's large-pass output
    (test_graph checks it for token-level graphs against the NumPy reference)."""
    encoder = SentenceEncoder(minilm_graph('hf', strategy, (-2,)), str(minilm_dir / 'vocab.txt'), 25,
                              pooling_strategy=PoolingStrategy.from_string(strategy))
    texts = [str(t) for t in golden['texts']] * 4
    passes = encoder.plan(encoder.features.build(texts).input_mask.sum(axis=1))
    assert all(encoder.runner.output_for(p.chunk.rows, p.chunk.width) == LARGE_PASS_OUTPUT for p in passes)
    vectors, _ = encoder.encode(texts)
    diff = float(np.abs(vectors - np.tile(golden[f'{strategy}__-2'], (4, 1))).max())
    assert diff <= TOLERANCE, f'max abs diff {diff}'


@pytest.mark.parametrize('strategy,layers', [('REDUCE_MEAN', (-2,)), ('NONE', (-1, -2)), ('SEP_TOKEN', (-1,))])
def test_running_at_each_length_matches_padding_to_max_seq_len(strategy, layers, minilm_graph, minilm_dir, golden):
    """Each sentence alone (graph at its own length) vs all padded to 25: within 1e-5."""
    texts = [str(t) for t in golden['texts']]
    builder = FeatureBuilder(FullTokenizer(str(minilm_dir / 'vocab.txt'), True), 25)
    runner = FrozenGraphRunner(minilm_graph('hf', strategy, layers))
    padded = builder.build(texts, pad_to=25)
    assert padded.input_ids.shape == (len(texts), 25)
    at_25 = runner.run(padded.input_ids, padded.input_mask, padded.input_type_ids)
    for row, text in enumerate(texts):
        alone = builder.build([text])
        length = alone.input_ids.shape[1]
        vector = runner.run(alone.input_ids, alone.input_mask, alone.input_type_ids)[0]
        if strategy == 'NONE':
            assert np.all(at_25[row, length:] == 0)
            reference = at_25[row, :length]
        else:
            reference = at_25[row]
        assert np.abs(vector - reference).max() <= 1e-5, f'row {row} ({length} tokens)'
