"""Tests of bert_serving.client against a small real ZeroMQ peer that speaks the wire protocol."""

import json
import socket
import threading
import time
import warnings

import numpy as np
import pytest
import zmq

from bert_serving.client import BertClient, ConcurrentBertClient, Response, ServerError, __version__
from bert_serving.client.version import PROTOCOL_VERSION

LOOPBACK = '127.0.0.1'


class ProtocolPeer:
    """A server end of the wire protocol on free loopback ports, run in a thread.

    PULL on ``port`` records every request; XPUB on ``port_out`` answers it. Each
    sentence encodes to the float32 row ``[request_id, row, word count]``; the sentence
    ``'boom'`` gets an error reply. A reply waits until some client subscribed to its
    identity, so tests do not depend on how fast subscriptions travel. With ``hold=n``
    encoding replies are held until ``n`` are ready, then published in reverse order.
    """

    def __init__(self):
        self.config = {'server_version': PROTOCOL_VERSION, 'max_seq_len': 25, 'show_tokens_to_client': False}
        self.requests = []
        self.hold = 0
        self._held = []
        self._queued = []
        self._subscriptions = {}
        self._stop = threading.Event()
        context = zmq.Context.instance()
        self._pull = context.socket(zmq.PULL)
        self._pub = context.socket(zmq.XPUB)
        self._pub.setsockopt(zmq.XPUB_VERBOSE, 1)  # report every subscriber, not only the first
        for sock in (self._pull, self._pub):
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(f'tcp://{LOOPBACK}:0')
        self.port = _port_of(self._pull)
        self.port_out = _port_of(self._pub)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def subscribers(self, identity):
        return self._subscriptions.get(identity, 0)

    def wait_for_subscribers(self, identity, count):
        deadline = time.monotonic() + 5
        while self.subscribers(identity) < count:
            assert time.monotonic() < deadline, f'{count} subscribers of {identity!r} never came'
            time.sleep(0.005)

    def stop(self):
        self._stop.set()
        self._thread.join(5)

    def _serve(self):
        poller = zmq.Poller()
        poller.register(self._pull, zmq.POLLIN)
        poller.register(self._pub, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(10))
                if self._pub in events:
                    event = self._pub.recv()
                    topic = event[1:]
                    self._subscriptions[topic] = self.subscribers(topic) + (1 if event[0] == 1 else -1)
                if self._pull in events:
                    self._answer(self._pull.recv_multipart())
                self._publish_ready()
        finally:
            self._pull.close()
            self._pub.close()

    def _answer(self, frames):
        self.requests.append(frames)
        identity, payload, request_id, _ = frames
        if payload == b'SHOW_CONFIG':
            self._queued.append([identity, json.dumps(self.config).encode(), request_id])
        elif payload == b'SHOW_STATUS':
            status = dict(self.config, statistic={'num_total_seq': 0})
            self._queued.append([identity, json.dumps(status).encode(), request_id])
        else:
            self._held.append([identity, *self._encode(json.loads(payload), int(request_id)), request_id])
            if len(self._held) >= self.hold:
                self._queued.extend(reversed(self._held))
                self._held.clear()

    def _encode(self, texts, request_id):
        if 'boom' in texts:
            info = {'dtype': 'server error', 'shape': [0], 'tokens': '',
                    'error': 'cannot encode "boom"', 'error_type': 'ValueError'}
            return json.dumps(info).encode(), b''
        words = [t if isinstance(t, list) else t.split() for t in texts]
        rows = np.array([[request_id, row, len(w)] for row, w in enumerate(words)], dtype=np.float32)
        tokens = [['[CLS]', *w, '[SEP]'] for w in words] if self.config['show_tokens_to_client'] else ''
        info = {'dtype': str(rows.dtype), 'shape': list(rows.shape), 'tokens': tokens}
        return json.dumps(info).encode(), rows.tobytes()

    def _publish_ready(self):
        waiting = []
        for frames in self._queued:
            if self.subscribers(frames[0]) > 0:  # its own subscription, as the sink waits for (not a prefix)
                self._pub.send_multipart(frames)
            else:
                waiting.append(frames)
        self._queued = waiting


def _port_of(sock):
    return int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(':', 1)[1])


def _free_port():
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@pytest.fixture
def peer():
    server = ProtocolPeer()
    yield server
    server.stop()


@pytest.fixture
def connect(peer):
    """Build clients of the peer (with a safety timeout) and close them after the test."""
    clients = []

    def make(cls=BertClient, **kwargs):
        kwargs = {'ip': LOOPBACK, 'port': peer.port, 'port_out': peer.port_out, 'timeout': 5000, **kwargs}
        client = cls(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _offline_client(**kwargs):
    return BertClient(ip=LOOPBACK, port=_free_port(), port_out=_free_port(), ignore_all_checks=True, **kwargs)


def _words(rows):
    return [int(row[2]) for row in rows]


# ---- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize('texts, is_tokenized, error, message', [
    ('hello world', False, TypeError, 'texts must be a list of str, got str'),
    ([], False, ValueError, 'empty list'),
    (['ok', 3], False, TypeError, 'texts[1] is int, expected str'),
    (['ok', b'bytes'], False, TypeError, 'texts[1] is bytes'),
    (['ok', '  \t'], False, ValueError, 'texts[1] is empty or only whitespace'),
    (['ok', ''], False, ValueError, 'texts[1] is empty'),
    ([['a', 'b']], False, TypeError, 'is_tokenized=True'),
    (('a', 'b'), True, TypeError, 'got tuple'),
    ([], True, ValueError, 'empty list'),
    ([['a'], 'a b'], True, TypeError, 'texts[1] is str, expected a list of str'),
    ([['a'], []], True, ValueError, 'texts[1] is an empty list of tokens'),
    ([['a', None]], True, TypeError, 'texts[0][1] is NoneType'),
    ([['a', ' ']], True, ValueError, 'texts[0][1] is empty'),
])
def test_malformed_texts_are_rejected_before_sending(texts, is_tokenized, error, message):
    with _offline_client() as bc:
        with pytest.raises(error) as raised:
            bc.encode(texts, is_tokenized=is_tokenized)
        assert message in str(raised.value)
        assert bc.status['num_request'] == 0


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match='output_fmt'):
        _offline_client(output_fmt='json')
    with pytest.raises(TypeError, match='identity'):
        _offline_client(identity=42)
    with pytest.raises(ValueError, match='max_concurrency'):
        ConcurrentBertClient(max_concurrency=0, ignore_all_checks=True)


# ---- timeouts -----------------------------------------------------------------------------

def test_constructor_times_out_with_a_hint_when_no_server_answers():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r'timeout=300 ms.*Is the server running.*port_out='):
        BertClient(ip=LOOPBACK, port=_free_port(), port_out=_free_port(), timeout=300)
    assert time.monotonic() - started < 3


def test_encode_and_server_config_time_out():
    with _offline_client(timeout=300) as bc:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match='raise it, or use timeout=-1'):
            bc.encode(['hello world'])
        with pytest.raises(TimeoutError):
            bc.server_config
        assert time.monotonic() - started < 3
        assert bc.encode(['not waited for'], blocking=False) is None
        assert bc.status['num_pending_request'] == 1  # given-up blocking requests are not pending


# ---- the wire -----------------------------------------------------------------------------

def test_request_frames_follow_the_protocol(peer, connect):
    bc = connect(identity='me')
    bc.encode(['hello world', '你好'])
    bc.encode([['hello', 'world']], is_tokenized=True)
    bc.server_status
    assert peer.requests[0] == [b'me', b'SHOW_CONFIG', b'1', b'0']
    identity, payload, request_id, msg_len = peer.requests[1]
    assert (identity, request_id, msg_len) == (b'me', b'2', b'2')
    assert json.loads(payload) == ['hello world', '你好']
    assert json.loads(peer.requests[2][1]) == [['hello', 'world']]
    assert peer.requests[2][2:] == [b'3', b'1']
    assert peer.requests[3] == [b'me', b'SHOW_STATUS', b'4', b'0']


def test_encode_returns_a_float32_array_in_send_order(connect):
    bc = connect()
    vectors = bc.encode(['one', 'two words', 'and three words'])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 3)
    np.testing.assert_array_equal(vectors, [[2, 0, 1], [2, 1, 2], [2, 2, 3]])
    vectors *= 2  # results are ordinary writable arrays


def test_list_output_format(connect):
    bc = connect(output_fmt='list')
    assert bc.encode(['a b', 'c']) == [[2.0, 0.0, 2.0], [2.0, 1.0, 1.0]]
    bc.encode(['d'], blocking=False)
    bc.encode(['e f'], blocking=False)
    assert bc.fetch_all(concat=True) == [[3.0, 0.0, 1.0], [4.0, 0.0, 2.0]]


def test_show_tokens(peer, connect):
    peer.config['show_tokens_to_client'] = True
    vectors, tokens = connect().encode(['hello world'], show_tokens=True)
    assert vectors.shape == (1, 3)
    assert tokens == [['[CLS]', 'hello', 'world', '[SEP]']]


def test_show_tokens_warns_when_the_server_does_not_send_them(connect):
    bc = connect()
    with pytest.warns(UserWarning, match='show_tokens_to_client'):
        vectors = bc.encode(['hello world'], show_tokens=True)
    assert vectors.shape == (1, 3)


def test_out_of_order_replies_are_reassembled(peer, connect):
    bc = connect()
    peer.hold = 3
    for texts in (['a'], ['b b', 'c c'], ['d d d']):
        assert bc.encode(texts, blocking=False) is None
    assert bc.status['pending_request'] == {2, 3, 4}
    batches = bc.fetch_all(sort=True)
    assert [int(b[0, 0]) for b in batches] == [2, 3, 4]
    assert bc.fetch_all() is None

    for texts in (['a'], ['b b', 'c c'], ['d d d']):
        bc.encode(texts, blocking=False)
    assert _words(bc.fetch_all(concat=True)) == [1, 2, 2, 3]


def test_blocking_encode_keeps_replies_to_earlier_requests(peer, connect):
    bc = connect()
    peer.hold = 3
    bc.encode(['a'], blocking=False)
    bc.encode(['b b'], blocking=False)
    assert _words(bc.encode(['c c c'])) == [3]  # its reply came first
    responses = list(bc.fetch())
    assert sorted(r.id for r in responses) == [2, 3]
    assert all(isinstance(r, Response) for r in responses)


def test_fetch_yields_nothing_without_pending_requests(connect):
    assert list(connect().fetch()) == []


def test_encode_async_waits_for_a_slow_generator(connect):
    bc = connect()

    def slow_batches():
        for n in range(1, 6):
            time.sleep(0.03)  # the results of earlier batches arrive before the next one is sent
            yield ['w ' * n]

    results = list(bc.encode_async(slow_batches(), delay=0))
    assert sorted(_words(r.embedding)[0] for r in results) == [1, 2, 3, 4, 5]


def test_encode_async_stops_after_max_num_batch(connect):
    bc = connect()
    batches = (['x'] for _ in range(100))
    assert len(list(bc.encode_async(batches, max_num_batch=3, delay=0))) == 3


def test_encode_async_reports_a_bad_batch_after_the_good_results(connect):
    bc = connect()
    fetched = []
    with pytest.raises(ValueError, match='texts is an empty list'):
        for response in bc.encode_async(iter([['a'], ['b'], []]), delay=0):
            fetched.append(response)
    assert len(fetched) == 2


def test_clients_sharing_an_identity_all_receive_results(peer, connect):
    sender = connect(identity='shared')
    listener = connect(identity=b'shared', ignore_all_checks=True, timeout=300)
    peer.wait_for_subscribers(b'shared', 2)
    vectors = sender.encode(['hello big world'])
    heard = list(listener.listen())  # ends after 300 ms of silence
    assert len(heard) == 1
    assert heard[0].id == 2
    np.testing.assert_array_equal(heard[0].embedding, vectors)


def test_listen_ends_when_the_client_is_closed(peer, connect):
    sender = connect(identity='shared')
    listener = connect(identity='shared', ignore_all_checks=True, timeout=-1)
    peer.wait_for_subscribers(b'shared', 2)
    sender.encode(['a'], blocking=False)
    sender.encode(['b'], blocking=False)
    heard = []
    for response in listener.listen():
        heard.append(response)
        listener.close()
    assert len(heard) == 1


def test_replies_to_a_longer_identity_are_ignored(peer, connect):
    short = connect(identity='job')
    longer = connect(identity='job2')
    peer.wait_for_subscribers(b'job2', 1)
    longer.encode(['a b c'], blocking=False)  # request id 2, also delivered to the "job" subscription
    assert _words(short.encode(['a'])) == [1]
    assert _words(longer.fetch_all()[0]) == [3]


def test_error_reply_raises_server_error(connect):
    bc = connect()
    with pytest.raises(ServerError, match='cannot encode "boom"') as raised:
        bc.encode(['fine', 'boom'])
    assert raised.value.error_type == 'ValueError'
    assert isinstance(raised.value, RuntimeError)
    assert bc.status['num_pending_request'] == 0
    assert _words(bc.encode(['still works'])) == [2]


# ---- server checks ------------------------------------------------------------------------

def test_version_mismatch_is_refused(peer, connect):
    peer.config['server_version'] = '1.9.0'
    with pytest.raises(AttributeError, match=r"'1.9.0'.*check_version=False"):
        connect()
    assert connect(check_version=False).encode(['ok']).shape == (1, 3)


def test_long_sentences_warn(peer, connect):
    peer.config['max_seq_len'] = 3
    bc = connect()
    with pytest.warns(UserWarning, match=r'texts\[1\] has 4 words.*max_seq_len=3'):
        bc.encode(['short', 'this one is long'])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        bc.encode(['short enough'])
        connect(check_length=False).encode(['this one is long'])


def test_dynamic_max_seq_len_warns(peer, connect):
    peer.config['max_seq_len'] = None
    with pytest.warns(UserWarning, match='max_seq_len=None'):
        connect().encode(['a'])


def test_server_config_status_and_client_status(peer, connect, capsys):
    bc = connect(identity='me', show_server_config=True)
    assert 'server_version = 1.10.0' in capsys.readouterr().out
    assert bc.server_config == peer.config
    assert bc.server_status['statistic'] == {'num_total_seq': 0}
    status = bc.status
    assert status['identity'] == b'me'
    assert status['num_request'] == 3 and status['num_pending_request'] == 0
    assert status['client_version'] == __version__
    assert (status['port'], status['port_out'], status['server_ip']) == (peer.port, peer.port_out, LOOPBACK)


def test_close_is_idempotent_and_final(connect):
    with connect() as bc:
        pass
    bc.close()
    with pytest.raises(RuntimeError, match='closed'):
        bc.encode(['a'])


# ---- the pool -----------------------------------------------------------------------------

def test_concurrent_client_serves_eight_threads(connect):
    pool = connect(ConcurrentBertClient, max_concurrency=3)
    failures = []

    def work(n):
        try:
            for _ in range(5):
                assert _words(pool.encode(['w ' * n, 'x'])) == [n, 1]
        except Exception as error:  # reported to the main thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert pool.server_config['server_version'] == PROTOCOL_VERSION
    assert 'statistic' in pool.server_status
    assert pool.status['num_pending_request'] == 0


def test_concurrent_client_refuses_async_use(connect):
    pool = connect(ConcurrentBertClient, max_concurrency=1)
    for call in (lambda: pool.encode_async(iter([['a']])), pool.fetch, pool.fetch_all,
                 lambda: pool.encode(['a'], blocking=False)):
        with pytest.raises(NotImplementedError, match='BertClient per thread'):
            call()
    with pytest.raises(ValueError, match='identity'):
        ConcurrentBertClient(identity='same', ignore_all_checks=True)
