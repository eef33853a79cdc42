"""BertClient: one connection to a bert-serving server that encodes sentences into vectors."""

import itertools
import math
import threading
import time

import zmq

from .arguments import as_identity, check_output_fmt, validate_texts, warn_if_too_long, warn_no_tokens
from .classification import check_top_k, classifier_labels, top_labels
from .connection import connect_sockets
from .errors import timeout_error
from .protocol import (SHOW_CONFIG, SHOW_STATUS, decode_dict, is_encoding, reply_id, request_frames,
                       texts_payload)
from .results import decode_response, join_embeddings, print_dict
from .selection import names_several_servers
from .version import PROTOCOL_VERSION, __version__


class BertClient:
    """A connection to a bert-serving server that encodes sentences into vectors.

    A BertClient is not thread-safe: use one per thread (or process), or share a
    :class:`ConcurrentBertClient` between threads.

    The constructor asks the running server for its configuration (to check the
    protocol version, ``max_seq_len`` and token support); pass
    ``ignore_all_checks=True`` when the server may not be up yet.

    Every wait for a reply is bounded by ``timeout`` milliseconds (-1, the default,
    waits forever); a late reply raises ``TimeoutError``::

        with BertClient(ip='gpu-box-1', timeout=10000) as bc:   # give up after 10 s
            vectors = bc.encode(['First do it', 'then do it right'])

    Several servers, as a list or a comma-separated string, make a
    :class:`~bert_serving.client.multi.MultiServerClient` that spreads the requests over
    them and survives one dying: ``BertClient(ip=['gpu-box-1', 'gpu-box-2'], timeout=10000)``.
    """

    def __new__(cls, ip='localhost', *args, **kwargs):
        """A :class:`~bert_serving.client.multi.MultiServerClient` when ``ip`` names several servers."""
        if cls is BertClient and names_several_servers(ip):
            from .multi import MultiServerClient
            cls = MultiServerClient
        return super().__new__(cls)

    def __init__(self, ip='localhost', port=5555, port_out=5556, output_fmt='ndarray',
                 show_server_config=False, identity=None, check_version=True, check_length=True,
                 check_token_info=True, ignore_all_checks=False, timeout=-1, *, server_public_key=None,
                 client_secret_key=None):
        """Connect to the server at ``ip``: requests go to ``port``, results come from ``port_out``.

        :param output_fmt: ``'ndarray'`` (numpy arrays) or ``'list'`` (nested lists of floats)
        :param show_server_config: print the server configuration once connected
        :param identity: str or bytes naming this client (a random UUID by default); every
            client with the same identity receives the results of all of them, see :meth:`listen`
        :param check_version: raise AttributeError when the server speaks another protocol version
        :param check_length: warn when sentences look longer than the server's ``max_seq_len``
        :param check_token_info: ask whether the server can send its tokenization back
        :param ignore_all_checks: do not contact the server here; skips all the checks above
        :param timeout: milliseconds to wait for each reply; -1 waits forever
        :param server_public_key: path of the server's ``server.key``, for a server started with
            CurveZMQ keys (``bert-serving-keys`` makes them); traffic is then encrypted
        :param client_secret_key: path of this client's ``NAME.key_secret``, whose public key the
            server must have in its ``-curve_client_keys`` folder
        """
        check_output_fmt(output_fmt)
        self.identity = as_identity(identity)
        self.ip, self.port, self.port_out = ip, port, port_out
        self.output_fmt = output_fmt
        self.timeout = int(timeout)

        self._request_id = 0
        self._pending = set()       # ids sent whose results the caller has not received yet
        self._early = {}            # frames of replies that arrived while waiting for another id
        self._async_senders = 0     # encode_async threads still sending
        self._async_error = None    # what stopped an encode_async thread, raised by fetch()
        self._closed = False
        # Guards everything above and the sender socket; notified after each send and
        # when an async sender ends, so fetch() knows whether more results can come.
        self._lock = threading.Condition()

        self._max_seq_len = None    # the server's, when check_length learnt it
        self._check_length = False
        self._server_shows_tokens = None  # None: not asked
        self._labels = None         # the classifier's, learnt at the first classify()

        self._context = zmq.Context()
        try:
            self._connect(server_public_key, client_secret_key)
        except BaseException:
            self._context.destroy(linger=0)
            raise

        if ignore_all_checks or not (check_version or check_length or check_token_info or show_server_config):
            return
        try:
            config = self.server_config
            self._learn_server(config, check_version, check_length, check_token_info)
        except BaseException:
            self.close()
            raise
        if show_server_config:
            print_dict(config, 'server config:')

    def _learn_server(self, config, check_version, check_length, check_token_info):
        """Apply the checks chosen at construction to the server's config."""
        server_version = config.get('server_version')
        if check_version and server_version != PROTOCOL_VERSION:
            raise AttributeError(
                f'the server at {self.ip}:{self.port} reports version {server_version!r}, but this client '
                f'speaks protocol {PROTOCOL_VERSION}; upgrade bert-serving-server and bert-serving-client '
                f'together, or pass BertClient(check_version=False) to connect anyway')
        if check_length:
            self._check_length = True
            self._max_seq_len = config.get('max_seq_len')
        if check_token_info:
            self._server_shows_tokens = bool(config.get('show_tokens_to_client'))

    # ---- public API -------------------------------------------------------------------

    def encode(self, texts, blocking=True, is_tokenized=False, show_tokens=False):
        """Encode sentences into vectors, one row per sentence, in the order given.

        :param texts: a non-empty list of non-empty str; with ``is_tokenized=True``
            a list of non-empty lists of str (tokens), e.g. ``[['hello', 'world']]``
        :param blocking: wait for the result; with False, return None at once and
            collect the result later with :meth:`fetch` or :meth:`fetch_all`
        :param is_tokenized: the sentences are already split into tokens
        :param show_tokens: also return the server's tokenization (the server must run
            with ``-show_tokens_to_client``)
        :return: ndarray (or list) of embeddings; ``(embeddings, tokens)`` with show_tokens
        :raises TypeError, ValueError: malformed ``texts`` (nothing is sent)
        :raises ServerError: the server rejected the request
        :raises TimeoutError: no result within ``timeout`` ms
        """
        validate_texts(texts, is_tokenized)
        if self._check_length:
            warn_if_too_long(texts, is_tokenized, self._max_seq_len, stacklevel=2)
        if show_tokens and self._server_shows_tokens is False:
            warn_no_tokens(stacklevel=2)
        request_id = self._send(texts_payload(texts), len(texts))
        if not blocking:
            return None
        response = self._decode(self._receive(request_id))
        if not show_tokens:
            return response.embedding
        if response.tokens:
            return response.embedding, response.tokens
        if self._server_shows_tokens is not False:  # otherwise warned before sending
            warn_no_tokens(stacklevel=2)
        return response.embedding

    def classify(self, texts, top_k=1, is_tokenized=False):
        """Classify sentences with a ``-task classify`` server: per sentence, its best labels.

        :param texts: as for :meth:`encode`; a pair is written ``'first ||| second'``
        :param top_k: how many labels per sentence, best first; None for every label
        :return: a list with, per sentence, a list of ``{"label": str, "score": float}``
        :raises ValueError: the server serves no classifier, or malformed ``texts``/``top_k``
        """
        check_top_k(top_k)
        validate_texts(texts, is_tokenized)
        if self._labels is None:
            self._labels = classifier_labels(self.server_config, f'{self.ip}:{self.port}')
        return top_labels(self.encode(texts, is_tokenized=is_tokenized), self._labels, top_k)

    def encode_async(self, batch_generator, max_num_batch=None, delay=0.1, **kwargs):
        """Send batches from a background thread and yield their results as they come.

        :param batch_generator: an iterable of batches, each a valid ``texts`` for :meth:`encode`
        :param max_num_batch: send at most this many batches (all by default)
        :param delay: seconds to wait before the first receive
        :param kwargs: further arguments of :meth:`encode` (``is_tokenized``, ``show_tokens``)
        :return: the generator of :meth:`fetch`, which ends once every batch sent has
            its result; an error that stopped the sender is raised at its end
        """
        batches = itertools.islice(batch_generator, max_num_batch)

        def send_all():
            error = None
            try:
                for texts in batches:
                    self.encode(texts, blocking=False, **kwargs)
            except Exception as exc:
                error = exc
            with self._lock:
                if error is not None and not self._closed:  # closing is how a caller stops the sender
                    self._async_error = error
                self._async_senders -= 1
                self._lock.notify_all()

        with self._lock:
            self._async_senders += 1
        threading.Thread(target=send_all, name='bert-client-sender', daemon=True).start()
        return self.fetch(delay)

    def fetch(self, delay=0.0):
        """Yield a :class:`Response` ``(id, embedding, tokens)`` for each result of a non-blocking request.

        Results come in arrival order, not send order; use the ``id`` (or
        :meth:`fetch_all`) to restore the order. Ends when no request is pending and
        no :meth:`encode_async` thread is still sending.

        :param delay: seconds to wait before the first receive
        """
        time.sleep(delay)
        while self._wait_for_pending():
            yield self._decode(self._receive())

    def fetch_all(self, sort=True, concat=False):
        """Collect the results of all pending non-blocking requests.

        :param sort: order the results as the requests were sent
        :param concat: join them into one ndarray (or one list) instead of a list of them
        :return: the embeddings, or None when nothing was pending (as in 1.10.0)
        """
        responses = list(self.fetch())
        if not responses:
            return None
        return join_embeddings(responses, sort, concat, self.output_fmt)

    def listen(self):
        """Yield a :class:`Response` for every result published to this client's identity.

        That includes results of requests sent by other clients created with the same
        ``identity`` (the server sends each result to all of them). Ends when this
        client is closed, or after ``timeout`` ms without a result (never with -1).
        A result that is an error raises :class:`ServerError`.
        """
        while not self._closed:
            try:
                frames = self._recv_frames(self._deadline())
            except TimeoutError:
                return
            if not is_encoding(frames):
                continue  # a config/status answer to another client with our identity
            with self._lock:
                self._pending.discard(reply_id(frames))
            yield self._decode(frames)

    @property
    def server_config(self):
        """The server's configuration (dict): its arguments, versions and start time."""
        return decode_dict(self._receive(self._send(SHOW_CONFIG)))

    @property
    def server_status(self):
        """The server's configuration plus ``statistic``: request counts, clients, sizes served."""
        return decode_dict(self._receive(self._send(SHOW_STATUS)))

    @property
    def status(self):
        """This client's state (dict): identity, request counts, pending ids, ports, versions, timeout."""
        with self._lock:
            pending = set(self._pending)
            num_request = self._request_id
        return {
            'identity': self.identity,
            'num_request': num_request,
            'num_pending_request': len(pending),
            'pending_request': pending,
            'output_fmt': self.output_fmt,
            'port': self.port,
            'port_out': self.port_out,
            'server_ip': self.ip,
            'client_version': __version__,
            'protocol_version': PROTOCOL_VERSION,
            'timeout': self.timeout,
        }

    def close(self):
        """Close the connection; calling it again does nothing. An encode_async thread stops sending."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_sockets()
            self._lock.notify_all()
        self._context.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # ---- sending and receiving --------------------------------------------------------

    def _connect(self, server_public_key, client_secret_key):
        """Open the sockets to the server at ``self.ip``."""
        self._receiver, self._sender = connect_sockets(self._context, self.ip, self.port, self.port_out,
                                                       self.identity, server_public_key, client_secret_key)

    def _close_sockets(self):
        self._sender.close()
        self._receiver.close()

    def _send(self, payload, msg_len=0):
        """Send one request and return its id; the id is pending before the server can answer."""
        with self._lock:
            if self._closed:
                raise RuntimeError('this BertClient is closed')
            self._request_id += 1
            request_id = self._request_id
            self._pending.add(request_id)
            try:
                self._dispatch(request_id, request_frames(self.identity, payload, request_id, msg_len))
            except BaseException:
                self._pending.discard(request_id)
                raise
            self._lock.notify_all()
        return request_id

    def _dispatch(self, request_id, frames):
        """Hand the frames of request ``request_id`` to the server; called with the lock held."""
        self._sender.setsockopt(zmq.SNDTIMEO, self.timeout)
        try:
            self._sender.send_multipart(frames)
        except zmq.Again:
            raise self._timeout_error('could not queue the request') from None

    def _receive(self, wanted=None):
        """Frames of the reply to request ``wanted``, or to any pending request when None.

        Replies to other pending requests are kept for later; replies to ids that are not
        pending (sent by a client sharing our identity, or given up on) are dropped.
        A blocking wait that fails gives up its request, so its late reply is dropped too.
        """
        deadline = self._reply_deadline()
        try:
            while True:
                with self._lock:
                    kept = wanted if wanted is not None else next(iter(self._early), None)
                    if kept in self._early:
                        self._pending.discard(kept)
                        return self._early.pop(kept)
                frames = self._recv_frames(deadline)
                request_id = reply_id(frames)
                with self._lock:
                    if request_id not in self._pending:
                        continue
                    if wanted is None or request_id == wanted:
                        self._pending.discard(request_id)
                        return frames
                    self._early[request_id] = frames
        finally:
            if wanted is not None:
                with self._lock:
                    self._pending.discard(wanted)

    def _recv_frames(self, deadline):
        """Next reply addressed exactly to us; TimeoutError once ``deadline`` (monotonic s) passes.

        The subscription matches by prefix, so replies to longer identities are skipped.
        """
        while True:
            wait_ms = None if deadline is None else max(0, math.ceil((deadline - time.monotonic()) * 1000))
            if not self._receiver.poll(wait_ms):
                raise self._timeout_error('no reply from the server')
            frames = self._receiver.recv_multipart()
            if frames[0] == self.identity:
                return frames

    def _wait_for_pending(self):
        """Block until a request is pending (True) or none can come any more (False).

        Raises the error that stopped an encode_async sender, once its results are all delivered.
        """
        with self._lock:
            self._lock.wait_for(lambda: self._pending or not self._async_senders or self._closed)
            if self._closed:
                return False
            if self._pending:
                return True
            error, self._async_error = self._async_error, None
        if error is not None:
            raise error
        return False

    def _reply_deadline(self):
        """When a wait for a reply gives up (monotonic s, None: never)."""
        return self._deadline()

    def _deadline(self):
        return None if self.timeout < 0 else time.monotonic() + self.timeout / 1000

    def _timeout_error(self, what):
        return timeout_error(what, self.timeout, self.ip, self.port, self.port_out)

    def _decode(self, frames):
        """Response of an encoding reply, with the embedding in this client's output_fmt."""
        return decode_response(frames, self.output_fmt)
