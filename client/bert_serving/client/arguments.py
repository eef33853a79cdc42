"""Checks of what callers pass to a client: identities, sentences, output formats, lengths."""

import uuid
import warnings

OUTPUT_FORMATS = ('ndarray', 'list')


def check_output_fmt(output_fmt):
    """Raise ValueError unless ``output_fmt`` is one the client can produce."""
    if output_fmt not in OUTPUT_FORMATS:
        raise ValueError(f'output_fmt must be "ndarray" or "list", got {output_fmt!r}')


def as_identity(identity):
    """The identity as non-empty bytes; a random UUID when None."""
    if identity is None:
        return str(uuid.uuid4()).encode('ascii')
    if isinstance(identity, str):
        identity = identity.encode('utf-8')
    if not isinstance(identity, bytes):
        raise TypeError(f'identity must be str or bytes, got {type(identity).__name__}')
    if not identity:
        raise ValueError('identity must not be empty')
    return identity


def validate_texts(texts, is_tokenized):
    """Raise TypeError/ValueError naming the first malformed item of ``texts``."""
    expected = 'a list of lists of str (is_tokenized=True)' if is_tokenized else 'a list of str'
    if not isinstance(texts, list):
        raise TypeError(f'texts must be {expected}, got {type(texts).__name__}')
    if not texts:
        raise ValueError('texts is an empty list: there is nothing to encode')
    for index, item in enumerate(texts):
        where = f'texts[{index}]'
        if not is_tokenized:
            if isinstance(item, list):
                raise TypeError(f'{where} is a list; pass is_tokenized=True to encode pre-tokenized sentences')
            _check_str(item, where)
            continue
        if not isinstance(item, list):
            raise TypeError(f'{where} is {type(item).__name__}, expected a list of str (is_tokenized=True)')
        if not item:
            raise ValueError(f'{where} is an empty list of tokens')
        for position, token in enumerate(item):
            _check_str(token, f'{where}[{position}]')


def _check_str(value, where):
    if not isinstance(value, str):
        raise TypeError(f'{where} is {type(value).__name__}, expected str')
    if not value.strip():
        raise ValueError(f'{where} is empty or only whitespace ({value!r}); every sentence needs some text')


def warn_if_too_long(texts, is_tokenized, max_seq_len, stacklevel):
    """Warn when a sentence has more words (or tokens) than the server's ``max_seq_len``.

    ``stacklevel`` counts from the caller of this function, so the warning points at user code.
    """
    if max_seq_len is None:
        warnings.warn('the server sets max_seq_len per batch (max_seq_len=None), so one long sentence '
                      'slows down the whole batch; consider trimming sentences on the client side',
                      stacklevel=stacklevel + 1)
        return
    limit = int(max_seq_len)
    unit = 'tokens' if is_tokenized else 'words'
    for index, item in enumerate(texts):
        length = len(item) if is_tokenized else len(item.split())
        if length > limit:
            warnings.warn(f'texts[{index}] has {length} {unit} but the server keeps at most '
                          f'max_seq_len={limit} tokens, so long sentences are truncated; start the server '
                          f'with a larger -max_seq_len, or pass BertClient(check_length=False) to silence '
                          f'this warning', stacklevel=stacklevel + 1)
            return


def warn_no_tokens(stacklevel):
    """Warn that show_tokens=True cannot be honoured by this server."""
    warnings.warn('show_tokens=True, but the server does not send tokens back; start it with '
                  '"bert-serving-start -show_tokens_to_client", or call encode(show_tokens=False)',
                  stacklevel=stacklevel + 1)
