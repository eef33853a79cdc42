"""SentenceEncoder: features + graph + output shapes, on the tiny model and on MiniLM."""
import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from bert_serving.server.model.checkpoint import locate_model
from bert_serving.server.model.chunking import (PACK_WIDTH, cut_chunks, default_concurrent_passes,
                                                default_max_batch_tokens, grid_width, pack_rows, padded_row_count,
                                                row_room, sentence_slots, split_lone_chunk)
from bert_serving.server.model.encoder import SentenceEncoder
from bert_serving.server.model.graph import GraphOptions, build_frozen_graph
from bert_serving.server.model.strategy import PoolingStrategy

S = PoolingStrategy
TEXTS = ['the quick brown fox', 'hello world', 'first do it ||| then do it right better', 'a']


@pytest.fixture(scope='module')
def tiny_graphs(tiny_model_dirs, tmp_path_factory):
    files = locate_model(tiny_model_dirs['hf'])
    out = tmp_path_factory.mktemp('encoder-graphs')
    return {strategy: build_frozen_graph(files, GraphOptions(strategy), str(out))
            for strategy in (S.NONE, S.REDUCE_MEAN)}


def tiny_encoder(tiny_model_dirs, tiny_graphs, strategy, max_seq_len, **kwargs):
    return SentenceEncoder(tiny_graphs[strategy], str(tiny_model_dirs['hf'] / 'vocab.txt'), max_seq_len,
                           pooling_strategy=strategy, model_max_len=64, **kwargs)


def test_sentence_vectors_and_tokens(tiny_model_dirs, tiny_graphs):
    encoder = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25)
    vectors, tokens = encoder.encode(TEXTS)
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    assert tokens[0] == ['[CLS]', 'the', 'quick', 'brown', 'fox', '[SEP]']
    assert tokens[2] == ['[CLS]', 'first', 'do', 'it', '[SEP]', 'then', 'do', 'it', 'right', 'better', '[SEP]']
    # a row does not depend on its neighbours
    alone, _ = encoder.encode(TEXTS[1:2])
    np.testing.assert_allclose(alone[0], vectors[1], atol=1e-5)


def test_chunks_run_at_a_few_row_counts_and_padding_rows_change_nothing(tiny_model_dirs, tiny_graphs):
    assert [padded_row_count(n) for n in (1, 3, 9, 16, 17, 24, 25, 63, 64)] == [1, 3, 9, 16, 24, 24, 32, 64, 64]
    encoder = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25)
    encoder.max_batch_tokens = 64 * 16  # chunks of 64 and 21 rows (all 16 wide), the last run as 24
    texts = [f'{TEXTS[i % len(TEXTS)]} {i}' for i in range(85)]
    vectors, _ = encoder.encode(texts)
    alone = np.concatenate([encoder.encode([text])[0] for text in texts])
    np.testing.assert_allclose(vectors, alone, atol=1e-5)


def test_sentences_are_packed_best_fit_longest_first_and_long_ones_alone():
    lengths = np.array([30, 5, 60, 20, 70, 9, 64])
    # 70 > 64 gets a row of its own, as does 64; 60 leaves room for no other; 30, 20, 9 and 5 fill the fourth
    assert pack_rows(lengths, room=64) == [[4], [6], [2], [0, 3, 5, 1]]
    # best fit: 30 fills the 30 left beside 70 exactly, the rest goes where the least room is left
    assert pack_rows(lengths, room=100) == [[4, 0], [6, 3, 5, 1], [2]]
    assert [sentence_slots(n) for n in (1, 2, 3, 4, 5, 9)] == [1, 2, 4, 4, 8, 16]


def test_rows_have_room_for_the_longest_sentence_on_the_width_grid():
    assert row_room(40, max_batch_tokens=1024, sentence_cap=128) == PACK_WIDTH
    assert row_room(65, max_batch_tokens=1024, sentence_cap=128) == 72  # not 65: a full row then pads nothing
    assert row_room(75, max_batch_tokens=1024, sentence_cap=25) == 75  # three sentences cut at 25
    assert row_room(10, max_batch_tokens=32) == 32
    lengths = np.array([65, 60, 12, 7, 5])
    assert pack_rows(lengths, room=row_room(65, 1024, 128)) == [[0, 3], [1, 2], [4]]  # 65 + 7 and 60 + 12 fill 72


def test_pooled_encoders_pack_sentences_and_token_level_ones_do_not(tiny_model_dirs, tiny_graphs):
    lengths = np.array([6] * 40 + [20] * 10)
    pooled = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25).plan(lengths)
    rows = [row for forward in pooled for row in forward.rows]
    assert sorted(s for row in rows for s in row) == list(range(50))
    assert all(lengths[row].sum() <= PACK_WIDTH for row in rows) and len(rows) == 8  # 3 x 20, 20 + 7 x 6, 10 x 6
    token_level = tiny_encoder(tiny_model_dirs, tiny_graphs, S.NONE, 25).plan(lengths)
    assert [[len(row) for row in forward.rows] for forward in token_level] == [[1] * 40, [1] * 10]


def test_small_packed_passes_run_on_the_width_grid_others_at_their_fullest_row(tiny_model_dirs, tiny_graphs):
    pooled = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25, max_batch_tokens=4096, concurrent_passes=1)
    assert [forward.chunk.width for forward in pooled.plan(np.array([20, 20, 19]))] == [64]  # one row of 59
    assert [(f.chunk.rows, f.chunk.width) for f in pooled.plan(np.array([20] * 72))] == [(24, 60)]  # 24 rows of 60
    assert [forward.chunk.width for forward in pooled.plan(np.array([13]))] == [13]
    assert [forward.chunk.width for forward in pooled.plan(np.array([25, 25, 25, 25, 20, 19]))] == [50]  # 2 x 25
    token_level = tiny_encoder(tiny_model_dirs, tiny_graphs, S.NONE, 25, concurrent_passes=1)
    assert [forward.chunk.width for forward in token_level.plan(np.array([25, 25, 13]))] == [25]


def test_a_call_of_one_chunk_runs_as_two_passes_when_passes_run_at_once(tiny_model_dirs, tiny_graphs):
    lengths = np.array([8] * 6 + [16] * 3 + [20])  # sorted, one chunk within the budget
    assert cut_chunks(lengths, 20, 1024) == [(0, 10, 10, 20)]
    halves = split_lone_chunk(cut_chunks(lengths, 20, 1024), lengths, 20)
    assert halves == [(0, 6, 6, 8), (6, 10, 4, 20)]  # 48 and 80 tokens: the most even of the cuts
    assert split_lone_chunk(cut_chunks(lengths[:1], 8, 1024), lengths[:1], 8) == [(0, 1, 1, 8)]  # one row stays
    several = cut_chunks(np.array([8] * 200), 8, 1024)
    assert split_lone_chunk(several, np.array([8] * 200), 8) == several
    texts = [' '.join(['word'] * (i % 9 + 1)) for i in range(20)]
    at_once = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25)
    in_turn = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25, concurrent_passes=1)
    call_lengths = at_once.features.build(texts).input_mask.sum(1)
    assert [len(encoder.plan(call_lengths)) for encoder in (at_once, in_turn)] == [2, 1]
    np.testing.assert_allclose(at_once.encode(texts)[0], in_turn.encode(texts)[0], atol=1e-6)


def test_an_encoder_in_a_fresh_process_gives_each_pass_its_share_of_the_cores(tiny_model_dirs, tiny_graphs):
    code = ('import os, sys\n'
            'from bert_serving.server.model.encoder import SentenceEncoder\n'
            'from bert_serving.server.model.tensorflow_quiet import tf\n'
            'SentenceEncoder(sys.argv[1], sys.argv[2], 25).encode(["a"])\n'
            'print(tf.config.threading.get_intra_op_parallelism_threads(), len(os.sched_getaffinity(0)))\n')
    vocab = str(tiny_model_dirs['hf'] / 'vocab.txt')
    out = subprocess.run([sys.executable, '-c', code, tiny_graphs[S.REDUCE_MEAN], vocab],
                         capture_output=True, text=True, timeout=300, check=True).stdout.split()
    threads, cores = map(int, out[-2:])
    assert threads == max(1, cores // 2)


def test_packed_rows_change_no_result(tiny_model_dirs, tiny_graphs):
    encoder = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25)
    texts = [f'{TEXTS[i % len(TEXTS)]} {"fox " * (i % 7)}' for i in range(30)]
    assert any(len(row) > 2 for forward in encoder.plan(encoder.features.build(texts).input_mask.sum(1))
               for row in forward.rows)
    alone = np.concatenate([encoder.encode([text])[0] for text in texts])
    np.testing.assert_allclose(encoder.encode(texts)[0], alone, atol=1e-5)


def test_token_budget_gives_long_sentences_small_chunks_and_short_ones_large():
    lengths = np.array([5] * 300 + [20] * 50 + [60] * 10 + [500])  # sorted, as the encoder passes them
    chunks = cut_chunks(lengths, max_width=512, max_batch_tokens=1024)
    assert [(c.stop - c.start, c.rows, c.width) for c in chunks] == [
        (44, 48, 8), (128, 128, 8), (128, 128, 8),  # the short ones in the largest chunks the budget allows
        (10, 10, 24), (40, 40, 24),                 # 48 x 24 > 1024
        (10, 10, 64),                               # no short row runs at the long ones' width
        (1, 1, 504)]                                # longer than the budget: alone
    assert [c.start for c in chunks[1:]] == [c.stop for c in chunks[:-1]] and chunks[-1].stop == len(lengths)
    assert all(c.rows * c.width <= 1024 for c in chunks[:-1])
    assert cut_chunks(np.array([3]), 25, 1024) == [(0, 1, 1, 8)] and cut_chunks(np.array([30]), 25, 1024)[0].width == 25
    assert (default_max_batch_tokens('/CPU:0'), default_max_batch_tokens('/GPU:0')) == (1024, 16384)


def test_rows_of_sentences_cut_at_max_seq_len_run_at_a_multiple_of_it():
    assert list(grid_width(np.array([26, 45, 49, 50, 51, 75]), 25)) == [32, 48, 50, 50, 56, 75]
    assert list(grid_width(np.array([26, 45, 49, 50, 51, 75]))) == [32, 48, 56, 56, 56, 80]
    lengths = np.array([48] * 8 + [50] * 40 + [64] * 40)  # the rows of 50 hold two sentences cut at 25
    assert [(c.rows, c.width) for c in cut_chunks(lengths, 64, 4096, sentence_cap=25)] == [(48, 50), (40, 64)]
    assert [(c.rows, c.width) for c in cut_chunks(lengths, 64, 4096)] == [(48, 56), (40, 64)]


@pytest.mark.parametrize('strategy', [S.REDUCE_MEAN, S.NONE])
def test_small_token_budgets_change_no_result(strategy, tiny_model_dirs, tiny_graphs):
    texts = [' '.join(['word'] * (i % 40 + 1)) + f' {i}' for i in range(70)]  # lengths 4 to 43
    unchunked, _ = tiny_encoder(tiny_model_dirs, tiny_graphs, strategy, 48, max_batch_tokens=100_000).encode(texts)
    for budget in (1, 64, 200):
        vectors, _ = tiny_encoder(tiny_model_dirs, tiny_graphs, strategy, 48, max_batch_tokens=budget).encode(texts)
        np.testing.assert_allclose(vectors, unchunked, atol=1e-5)


@pytest.mark.parametrize('strategy', [S.REDUCE_MEAN, S.NONE])
def test_passes_run_at_once_on_their_threads_give_the_results_of_passes_in_turn(strategy, tiny_model_dirs,
                                                                                 tiny_graphs):
    assert (default_concurrent_passes('/CPU:0'), default_concurrent_passes('/GPU:0')) == (2, 1)
    texts = [' '.join(['word'] * (i % 40 + 1)) + f' {i}' for i in range(70)]
    in_turn = tiny_encoder(tiny_model_dirs, tiny_graphs, strategy, 48, max_batch_tokens=200, concurrent_passes=1)
    at_once = tiny_encoder(tiny_model_dirs, tiny_graphs, strategy, 48, max_batch_tokens=200, concurrent_passes=3)
    assert len(at_once.plan(at_once.features.build(texts).input_mask.sum(1))) > 3
    before = set(threading.enumerate())  # threads, not names: other encoders' pools name theirs alike
    vectors, tokens = at_once.encode(texts)
    started = [t for t in threading.enumerate() if t not in before and t.name.startswith('forward-pass')]
    assert len(started) == 3
    expected, expected_tokens = in_turn.encode(texts)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert tokens == expected_tokens


@pytest.mark.parametrize('max_seq_len,fixed,width',
                         [(25, False, 25), (None, True, 64), (None, False, 11), (8, False, 8)])
def test_token_level_output_length(max_seq_len, fixed, width, tiny_model_dirs, tiny_graphs):
    encoder = tiny_encoder(tiny_model_dirs, tiny_graphs, S.NONE, max_seq_len, fixed_embed_length=fixed)
    vectors, tokens = encoder.encode(TEXTS)
    assert vectors.shape == (4, width, 32)
    for row, row_tokens in enumerate(tokens):
        assert np.all(vectors[row, len(row_tokens):] == 0)
        assert np.all(np.abs(vectors[row, :len(row_tokens)]).sum(-1) > 0)


def test_truncation_follows_max_seq_len(tiny_model_dirs, tiny_graphs):
    encoder = tiny_encoder(tiny_model_dirs, tiny_graphs, S.NONE, 5)
    vectors, tokens = encoder.encode(['the quick brown fox jumps over'])
    assert tokens == [['[CLS]', 'the', 'quick', 'brown', '[SEP]']] and vectors.shape == (1, 5, 32)


def test_pretokenized_input_and_no_special_tokens(tiny_model_dirs, tiny_graphs):
    encoder = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25)
    text_vectors, _ = encoder.encode(['hello world'])
    token_vectors, tokens = encoder.encode([['hello', 'world']], is_tokenized=True)
    assert tokens == [['[CLS]', 'hello', 'world', '[SEP]']]
    np.testing.assert_array_equal(token_vectors, text_vectors)
    bare = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25, add_special_tokens=False)
    bare_vectors, bare_tokens = bare.encode(['hello world'])
    assert bare_tokens == [['hello', 'world']] and not np.allclose(bare_vectors, text_vectors)


def test_bad_input_is_a_value_error(tiny_model_dirs, tiny_graphs):
    encoder = tiny_encoder(tiny_model_dirs, tiny_graphs, S.REDUCE_MEAN, 25)
    with pytest.raises(ValueError):
        encoder.encode([])
    with pytest.raises(ValueError):
        encoder.encode(['fine', 3])


@pytest.mark.slow
def test_minilm_batches_of_mixed_lengths_match_golden(minilm_graph, minilm_dir, golden):
    """Sub-batches run at their own longest sentence; every row still matches the golden vectors at length 25."""
    encoder = SentenceEncoder(minilm_graph('hf', 'NONE', (-1,)), str(minilm_dir / 'vocab.txt'), 25,
                              pooling_strategy=S.NONE)
    texts = [str(t) for t in golden['texts']]
    expected_tokens = json.loads(str(golden['tokens']))
    for rows in ([4, 14], [0, 1, 2, 8], [15], list(range(10))):
        vectors, tokens = encoder.encode([texts[r] for r in rows])
        assert tokens == [expected_tokens[r] for r in rows]
        assert vectors.shape == (len(rows), 25, 384)
        assert np.abs(vectors - golden['NONE__-1'][rows]).max() <= 1e-4
