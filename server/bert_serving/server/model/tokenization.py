"""BERT WordPiece tokenization (Google's uncased/cased semantics), pure Python.

Pipeline: clean the text (drop NUL, U+FFFD and control characters, map every
whitespace character to a space, put spaces around CJK ideographs), split on
whitespace, then per word: optionally lower-case and strip accents, split off
punctuation, and finally split each piece greedily into WordPiece sub-tokens.

Everything after the whitespace split depends only on the word, so the
per-word result is cached (bounded LRU); per-character classification is
cached as well, which keeps the hot path free of regexes and most
``unicodedata`` calls.
"""

import functools
import unicodedata

UNK_TOKEN = '[UNK]'
WORD_CACHE_SIZE = 1 << 16
_CHAR_TABLE_LIMIT = 1 << 16


def load_vocab(vocab_file: str) -> dict[str, int]:
    """Read a vocabulary with one token per line; a token's id is its line index."""
    try:
        with open(vocab_file, encoding='utf-8', newline='\n') as reader:
            lines = reader.read().split('\n')
    except FileNotFoundError:
        raise FileNotFoundError(f'vocab file not found: {vocab_file}') from None
    if lines and lines[-1] == '':
        lines.pop()  # the final newline does not start another token
    if not lines:
        raise ValueError(f'vocab file is empty: {vocab_file}')
    vocab = {}
    for index, line in enumerate(lines):
        vocab[line.strip()] = index
    return vocab


def _is_whitespace(char):
    """Space, tab, newline, carriage return or any Unicode space separator (Zs)."""
    return char in ' \t\n\r' or unicodedata.category(char) == 'Zs'


def _is_control(char):
    """Control or format character (Cc/Cf); tab, newline and CR count as whitespace."""
    if char in '\t\n\r':
        return False
    return unicodedata.category(char) in ('Cc', 'Cf')


def _is_cjk_ideograph(code_point):
    """True for code points in the CJK Unified Ideographs blocks (not Hangul or kana)."""
    return (0x4E00 <= code_point <= 0x9FFF
            or 0x3400 <= code_point <= 0x4DBF
            or 0x20000 <= code_point <= 0x2A6DF
            or 0x2A700 <= code_point <= 0x2B73F
            or 0x2B740 <= code_point <= 0x2B81F
            or 0x2B820 <= code_point <= 0x2CEAF
            or 0xF900 <= code_point <= 0xFAFF
            or 0x2F800 <= code_point <= 0x2FA1F)


@functools.lru_cache(maxsize=None)
def _is_punctuation(char):
    """Unicode punctuation (P*) plus every ASCII non-alphanumeric printable symbol."""
    code_point = ord(char)
    if (33 <= code_point <= 47 or 58 <= code_point <= 64
            or 91 <= code_point <= 96 or 123 <= code_point <= 126):
        return True
    return unicodedata.category(char).startswith('P')


class _CleaningTable(dict):
    """``str.translate`` table, filled lazily: code point -> replacement text.

    Dropped characters map to None, whitespace to a space, CJK ideographs to
    the ideograph surrounded by spaces; other characters are left unchanged.
    """

    def __missing__(self, code_point):
        char = chr(code_point)
        if code_point == 0 or code_point == 0xFFFD or _is_control(char):
            replacement = None
        elif _is_whitespace(char):
            replacement = ' '
        elif _is_cjk_ideograph(code_point):
            replacement = f' {char} '
        else:
            replacement = char
        if len(self) < _CHAR_TABLE_LIMIT:
            self[code_point] = replacement
        return replacement


_CLEANING_TABLE = _CleaningTable()


def _split_into_words(text):
    """Clean ``text`` and split it on whitespace (CJK ideographs become their own words)."""
    return text.translate(_CLEANING_TABLE).split()


def _strip_accents(text):
    """Decompose (NFD) and drop the combining marks (Mn)."""
    if text.isascii():
        return text
    return ''.join(char for char in unicodedata.normalize('NFD', text)
                   if unicodedata.category(char) != 'Mn')


def _split_on_punctuation(text):
    """Split ``text`` so that every punctuation character is a piece of its own."""
    if text.isalnum():
        return [text]
    pieces = []
    current = []
    for char in text:
        if _is_punctuation(char):
            if current:
                pieces.append(''.join(current))
                current = []
            pieces.append(char)
        else:
            current.append(char)
    if current:
        pieces.append(''.join(current))
    return pieces


class BasicTokenizer:
    """Cleaning, whitespace and punctuation splitting, optional lower-casing with accent stripping."""

    def __init__(self, do_lower_case: bool = True):
        self.do_lower_case = do_lower_case
        self._split_word = functools.lru_cache(maxsize=WORD_CACHE_SIZE)(self._split_word_uncached)

    def tokenize(self, text: str) -> list[str]:
        """Return the basic tokens of ``text`` (words and single punctuation characters)."""
        tokens = []
        for word in _split_into_words(text):
            tokens.extend(self._split_word(word))
        return tokens

    def _split_word_uncached(self, word):
        if self.do_lower_case:
            word = _strip_accents(word.lower())
        # Lower-casing and NFD never create whitespace from non-whitespace in practice,
        # but split again so the result matches a whitespace split of the joined text.
        return tuple(token for piece in _split_on_punctuation(word) for token in piece.split())


class WordpieceTokenizer:
    """Greedy longest-match-first split of whitespace-separated words into WordPiece tokens."""

    def __init__(self, vocab: dict[str, int], unk_token: str = UNK_TOKEN, max_input_chars_per_word: int = 100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self._split_word = functools.lru_cache(maxsize=WORD_CACHE_SIZE)(self._split_word_uncached)

    def tokenize(self, text: str) -> list[str]:
        """Split every whitespace-separated word of ``text``; unsplittable or over-long words give ``unk_token``."""
        tokens = []
        for word in text.split():
            tokens.extend(self._split_word(word))
        return tokens

    def _split_word_uncached(self, word):
        if len(word) > self.max_input_chars_per_word:
            return (self.unk_token,)
        if word in self.vocab:
            return (word,)
        pieces = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                candidate = word[start:end] if start == 0 else '##' + word[start:end]
                if candidate in self.vocab:
                    pieces.append(candidate)
                    break
                end -= 1
            else:
                return (self.unk_token,)
            start = end
        return tuple(pieces)


class FullTokenizer:
    """Basic tokenization followed by WordPiece, plus token <-> id conversion."""

    def __init__(self, vocab_file: str, do_lower_case: bool = True):
        self.vocab = load_vocab(vocab_file)
        if UNK_TOKEN not in self.vocab:
            raise ValueError(f'vocab file {vocab_file} has no {UNK_TOKEN} token')
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
        self._unk_id = self.vocab[UNK_TOKEN]
        self._tokenize_word = functools.lru_cache(maxsize=WORD_CACHE_SIZE)(self._tokenize_word_uncached)

    def tokenize(self, text: str) -> list[str]:
        """Return the WordPiece tokens of ``text`` (no [CLS]/[SEP])."""
        tokens = []
        for word in _split_into_words(text):
            tokens.extend(self._tokenize_word(word))
        return tokens

    def _tokenize_word_uncached(self, word):
        split_wordpiece = self.wordpiece_tokenizer._split_word_uncached
        return tuple(piece for token in self.basic_tokenizer._split_word_uncached(word)
                     for piece in split_wordpiece(token))

    def convert_tokens_to_ids(self, tokens) -> list[int]:
        """Map tokens to ids; tokens missing from the vocabulary get the id of [UNK]."""
        vocab_get = self.vocab.get
        unk_id = self._unk_id
        return [vocab_get(token, unk_id) for token in tokens]
