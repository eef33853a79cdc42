"""ConcurrentBertClient: a thread-safe pool of BertClients for encoding from many threads."""

import contextlib
import queue

from .client import BertClient


def _pool_unsupported(name):
    """A ConcurrentBertClient method that explains why ``name`` is not available."""
    def method(self, *args, **kwargs):
        raise NotImplementedError(f'ConcurrentBertClient.{name}() is not supported: results of a pooled '
                                  f'client cannot be fetched later; call encode() from each thread, or '
                                  f'use a BertClient per thread for {name}()')
    method.__name__ = name
    method.__doc__ = f'Not supported by the pool (raises NotImplementedError); see BertClient.{name}.'
    return method


class ConcurrentBertClient:
    """A thread-safe pool of :class:`BertClient` objects for encoding from many threads.

    Each call borrows an idle client and waits for one when all ``max_concurrency`` are
    busy. Only blocking calls are available: encode_async, fetch and fetch_all raise
    NotImplementedError.
    """

    def __init__(self, max_concurrency=10, **kwargs):
        """Open ``max_concurrency`` clients, each built with ``kwargs`` (see :class:`BertClient`).

        ``identity`` is refused: each pooled client needs its own.
        """
        if max_concurrency < 1:
            raise ValueError(f'max_concurrency must be at least 1, got {max_concurrency}')
        if kwargs.get('identity') is not None:
            raise ValueError('ConcurrentBertClient gives each pooled client its own identity; do not pass one')
        self.max_concurrency = max_concurrency
        self._clients = []
        try:
            self._clients.append(BertClient(**kwargs))  # prints the server config once, if asked
            kwargs['show_server_config'] = False
            self._clients.extend(BertClient(**kwargs) for _ in range(max_concurrency - 1))
        except BaseException:
            self.close()
            raise
        self._idle = queue.LifoQueue()
        for client in self._clients:
            self._idle.put(client)

    @contextlib.contextmanager
    def _borrow(self):
        client = self._idle.get()
        try:
            yield client
        finally:
            self._idle.put(client)

    def encode(self, texts, blocking=True, is_tokenized=False, show_tokens=False):
        """Encode with an idle pooled client; see :meth:`BertClient.encode`. Must be blocking."""
        if not blocking:
            raise NotImplementedError('ConcurrentBertClient.encode() is blocking only: a pooled client '
                                      'cannot fetch results later; use a BertClient per thread for that')
        with self._borrow() as client:
            return client.encode(texts, is_tokenized=is_tokenized, show_tokens=show_tokens)

    def classify(self, texts, top_k=1, is_tokenized=False):
        """Classify with an idle pooled client; see :meth:`BertClient.classify`."""
        with self._borrow() as client:
            return client.classify(texts, top_k=top_k, is_tokenized=is_tokenized)

    @property
    def server_config(self):
        """The server's configuration (dict), asked through an idle pooled client."""
        with self._borrow() as client:
            return client.server_config

    @property
    def server_status(self):
        """The server's status (dict), asked through an idle pooled client."""
        with self._borrow() as client:
            return client.server_status

    @property
    def status(self):
        """The status (dict) of an idle pooled client."""
        with self._borrow() as client:
            return client.status

    def close(self):
        """Close every pooled client; call it once no thread uses the pool."""
        for client in self._clients:
            client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    encode_async = _pool_unsupported('encode_async')
    fetch = _pool_unsupported('fetch')
    fetch_all = _pool_unsupported('fetch_all')
