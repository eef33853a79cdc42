"""Google-BERT tokenization semantics on a tiny hand-written vocabulary."""

import pytest

from bert_serving.server.model.tokenization import (
    BasicTokenizer, FullTokenizer, WordpieceTokenizer, load_vocab)

VOCAB_TOKENS = ['[UNK]', '[CLS]', '[SEP]', 'want', '##want', '##ed', 'wa', 'un', 'runn', '##ing', ',',
                'low', 'lowest', '[', ']', 'cl', '##s', 'a', '##a', 'é']


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / 'vocab.txt'
    path.write_text(''.join(token + '\n' for token in VOCAB_TOKENS), encoding='utf-8')
    return str(path)


@pytest.fixture
def vocab():
    return {token: index for index, token in enumerate(VOCAB_TOKENS)}


# load_vocab

def test_load_vocab_ids_are_line_indices(vocab_file):
    assert load_vocab(vocab_file) == {token: index for index, token in enumerate(VOCAB_TOKENS)}


def test_load_vocab_strips_windows_line_endings(tmp_path):
    path = tmp_path / 'crlf.txt'
    path.write_bytes(b'[UNK]\r\nhello\r\n')
    assert load_vocab(str(path)) == {'[UNK]': 0, 'hello': 1}


def test_load_vocab_missing_file_names_the_file(tmp_path):
    missing = tmp_path / 'nope.txt'
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        load_vocab(str(missing))


def test_load_vocab_empty_file_names_the_file(tmp_path):
    empty = tmp_path / 'empty.txt'
    empty.write_text('')
    with pytest.raises(ValueError, match='empty.txt'):
        load_vocab(str(empty))


# BasicTokenizer

def test_basic_lower_splits_whitespace_and_punctuation():
    tokens = BasicTokenizer(do_lower_case=True).tokenize(' \tHeLLo!how  \n Are yoU?  ')
    assert tokens == ['hello', '!', 'how', 'are', 'you', '?']


def test_basic_lower_strips_accents():
    assert BasicTokenizer(do_lower_case=True).tokenize('H\u00e9llo Na\u00efve') == ['hello', 'naive']


def test_basic_cased_keeps_case_and_accents():
    tokens = BasicTokenizer(do_lower_case=False).tokenize(' \tHeLLo!how  \n Are yoU? H\u00e9llo ')
    assert tokens == ['HeLLo', '!', 'how', 'Are', 'yoU', '?', 'H\u00e9llo']


def test_basic_splits_each_cjk_ideograph():
    assert BasicTokenizer().tokenize('ah\u535a\u63a8zz') == ['ah', '\u535a', '\u63a8', 'zz']


def test_basic_keeps_hangul_and_kana_words_together():
    text = '\ud55c\uad6d\uc5b4 \u3072\u3089\u304c\u306a'
    assert BasicTokenizer(do_lower_case=False).tokenize(text) == ['\ud55c\uad6d\uc5b4', '\u3072\u3089\u304c\u306a']


def test_basic_uncased_strips_combining_marks_after_nfd():
    # Google's accent stripping also drops the dakuten of decomposed kana (ga -> ka).
    assert BasicTokenizer(do_lower_case=True).tokenize('\u304c') == ['\u304b']


def test_basic_removes_nul_replacement_and_control_chars():
    text = 'a\x00b\x07c\ufffdd\u200be\x7ff'
    assert BasicTokenizer().tokenize(text) == ['abcdef']


def test_basic_keeps_private_use_and_unassigned_chars():
    # Only Cc/Cf count as control characters; Co (private use) and Cn (unassigned) stay.
    assert BasicTokenizer().tokenize('a\ue000b\U000e0080c') == ['a\ue000b\U000e0080c']


def test_basic_treats_unicode_spaces_as_whitespace():
    assert BasicTokenizer().tokenize('a\u3000b\xa0c\u2003d') == ['a', 'b', 'c', 'd']


def test_basic_ascii_symbols_count_as_punctuation():
    # $ ^ ` are not Unicode punctuation (Sc/Sk) but Google's definition includes them.
    assert BasicTokenizer().tokenize('a$b^c`d+e') == ['a', '$', 'b', '^', 'c', '`', 'd', '+', 'e']


def test_basic_unicode_punctuation_splits_but_symbols_do_not():
    assert BasicTokenizer().tokenize('a\u2014b \u00a9c') == ['a', '\u2014', 'b', '\u00a9c']


def test_basic_special_token_text_is_ordinary_text():
    assert BasicTokenizer().tokenize('[CLS] x [SEP]') == ['[', 'cls', ']', 'x', '[', 'sep', ']']


def test_basic_empty_and_whitespace_only_give_no_tokens():
    assert BasicTokenizer().tokenize('') == []
    assert BasicTokenizer().tokenize('  \t\n ') == []


# WordpieceTokenizer

def test_wordpiece_greedy_longest_match(vocab):
    tokenizer = WordpieceTokenizer(vocab)
    assert tokenizer.tokenize('unwanted running') == ['un', '##want', '##ed', 'runn', '##ing']
    assert tokenizer.tokenize('lowest') == ['lowest']


def test_wordpiece_unsplittable_word_is_unk(vocab):
    assert WordpieceTokenizer(vocab).tokenize('unwantedX running') == ['[UNK]', 'runn', '##ing']


def test_wordpiece_empty_text(vocab):
    assert WordpieceTokenizer(vocab).tokenize('') == []


def test_wordpiece_word_length_limit(vocab):
    tokenizer = WordpieceTokenizer(vocab)
    assert tokenizer.tokenize('a' * 100) == ['a'] + ['##a'] * 99
    assert tokenizer.tokenize('a' * 101) == ['[UNK]']
    assert WordpieceTokenizer(vocab, max_input_chars_per_word=3).tokenize('aaa aaaa') == [
        'a', '##a', '##a', '[UNK]']


def test_wordpiece_custom_unk_token(vocab):
    assert WordpieceTokenizer(vocab, unk_token='<?>').tokenize('xyz') == ['<?>']


def test_wordpiece_repeated_calls_give_same_result(vocab):
    tokenizer = WordpieceTokenizer(vocab)
    first = tokenizer.tokenize('unwanted unwanted')
    assert first == tokenizer.tokenize('unwanted unwanted') == ['un', '##want', '##ed'] * 2


# FullTokenizer

def test_full_tokenizer_uncased(vocab_file):
    tokenizer = FullTokenizer(vocab_file)
    tokens = tokenizer.tokenize('UNwant\u00e9d,running')
    assert tokens == ['un', '##want', '##ed', ',', 'runn', '##ing']
    assert tokenizer.convert_tokens_to_ids(tokens) == [7, 4, 5, 10, 8, 9]


def test_full_tokenizer_cased_keeps_unknown_casing_as_unk(vocab_file):
    tokenizer = FullTokenizer(vocab_file, do_lower_case=False)
    assert tokenizer.tokenize('UNwanted unwanted \u00e9') == ['[UNK]', 'un', '##want', '##ed', '\u00e9']


def test_full_tokenizer_special_token_text_becomes_word_pieces(vocab_file):
    tokenizer = FullTokenizer(vocab_file)
    tokens = tokenizer.tokenize('[CLS]')
    assert tokens == ['[', 'cl', '##s', ']']
    assert 1 not in tokenizer.convert_tokens_to_ids(tokens)  # 1 is the real [CLS]


def test_full_tokenizer_unknown_token_maps_to_unk_id(vocab_file):
    tokenizer = FullTokenizer(vocab_file)
    assert tokenizer.convert_tokens_to_ids(['want', 'nothere']) == [3, 0]


def test_full_tokenizer_inverse_vocab(vocab_file):
    tokenizer = FullTokenizer(vocab_file)
    assert tokenizer.inv_vocab[3] == 'want'
    assert len(tokenizer.inv_vocab) == len(tokenizer.vocab)


def test_full_tokenizer_requires_unk_in_vocab(tmp_path):
    path = tmp_path / 'no_unk.txt'
    path.write_text('a\nb\n')
    with pytest.raises(ValueError, match=r'\[UNK\]'):
        FullTokenizer(str(path))
