"""BertClient(ip=[...]) over several small real ZeroMQ peers that speak the wire protocol (test_client's)."""

import threading
import time

import pytest
import zmq

from bert_serving.client import BertClient, ConcurrentBertClient
from bert_serving.client.multi import MultiServerClient
from servers import wait_until
from test_client import LOOPBACK, ProtocolPeer


@pytest.fixture
def peers():
    running = [ProtocolPeer(), ProtocolPeer()]
    running.sort(key=lambda peer: peer.port)  # the order in which the client ranks equal servers
    yield running
    for peer in running:
        peer.stop()


@pytest.fixture
def connect(peers):
    """Build clients over all the peers (with a safety timeout), connected to each, closed after the test."""
    clients = []

    def make(cls=BertClient, **kwargs):
        kwargs = {'ip': [address(peer) for peer in peers], 'timeout': 5000, **kwargs}
        client = cls(**kwargs)
        clients.append(client)
        if cls is BertClient:
            assert wait_until(lambda: all(s['connected'] for s in client.status['servers'].values()), 5)
        return client

    yield make
    for client in clients:
        client.close()


def address(peer):
    return f'{LOOPBACK}:{peer.port}:{peer.port_out}'


def encodings(peer):
    """The encoding requests a peer received (not the config and status questions)."""
    return [frames for frames in peer.requests if frames[1] not in (b'SHOW_CONFIG', b'SHOW_STATUS')]


@pytest.mark.parametrize('ip, error, message', [
    (['127.0.0.1:5555'], ValueError, "ip[0]='127.0.0.1:5555' must be \"host\" or \"host:port:port_out\""),
    (['localhost', 5], TypeError, 'ip[1]=5 is int'),
    ([], ValueError, 'ip is an empty list'),
    ('localhost,127.0.0.1:x:5556', ValueError, "ip[1]='127.0.0.1:x:5556': port 'x' must be a number"),
    ('localhost,127.0.0.1:5555:0', ValueError, "port '0' must be a number from 1 to 65535"),
])
def test_bad_entries_are_named(ip, error, message):
    with pytest.raises(error) as raised:
        BertClient(ip=ip, ignore_all_checks=True)
    assert message in str(raised.value)


def test_refresh_s_must_be_positive():
    with pytest.raises(ValueError, match='refresh_s must be a positive number of seconds or None, got 0'):
        BertClient(ip=['localhost'], refresh_s=0)


def test_only_a_list_or_a_comma_makes_a_multi_server_client():
    for ip, cls in (('127.0.0.1', BertClient), ('127.0.0.1,127.0.0.2', MultiServerClient),
                    (['127.0.0.1'], MultiServerClient), (('127.0.0.1',), MultiServerClient)):
        with BertClient(ip=ip, ignore_all_checks=True) as client:
            assert type(client) is cls and isinstance(client, BertClient)


def test_requests_alternate_over_idle_servers_and_fetch_all_keeps_their_order(peers, connect):
    client = connect()
    vectors = [client.encode(['one two']) for _ in range(10)]
    assert [len(encodings(peer)) for peer in peers] == [5, 5]
    assert [v[0, 0] for v in vectors] == list(range(2, 12))  # each its own reply (id 1 asked for the config)
    for index in range(40):
        client.encode([f'sentence {index}'], blocking=False)
    rows = client.fetch_all(concat=True)
    assert rows.shape == (40, 3) and list(rows[:, 0]) == list(range(12, 52))
    assert all(len(encodings(peer)) > 5 for peer in peers)
    assert client.fetch_all() is None


def test_encode_async_and_the_concurrent_client_work_across_servers(peers, connect):
    batches = [['a b c'] * (index + 1) for index in range(12)]
    client = connect()
    streamed = sorted(client.encode_async(iter(batches)), key=lambda response: response.id)
    assert [len(response.embedding) for response in streamed] == [len(batch) for batch in batches]

    pool = connect(ConcurrentBertClient, max_concurrency=3)
    results, errors = [], []

    def encode(index):
        try:
            results.append((index, pool.encode([f'w{index}'] * index + ['x y z'])))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=encode, args=(index,)) for index in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for index, rows in results:
        assert list(rows[:, 1]) == list(range(index + 1)) and list(rows[:, 2]) == [1] * index + [3]
    assert all(len(encodings(peer)) > 0 for peer in peers)


def test_requests_held_by_a_server_that_goes_away_are_answered_by_the_other(peers, connect):
    going, staying = peers
    going.hold = 10**6   # never answers: only its dropped connection can tell
    client = connect(timeout=20_000)
    for index in range(10):
        client.encode([f'sentence {index}'], blocking=False)
    assert wait_until(lambda: len(encodings(going)) == 5, 5)
    going.stop()
    rows = client.fetch_all(concat=True)
    assert list(rows[:, 0]) == list(range(int(rows[0, 0]), int(rows[0, 0]) + 10))
    assert len(encodings(staying)) == 10
    servers = client.status['servers']
    assert servers[address(going)]['connected'] is False
    assert servers[address(going)]['num_moved_off'] == 5
    assert servers[address(staying)]['num_timed_out'] == 0 == servers[address(going)]['num_timed_out']
    assert 'error' in client.server_status[address(going)]
    assert 'statistic' in client.server_status[address(staying)]


def test_a_request_that_times_out_moves_on_and_its_late_reply_is_dropped(peers, connect):
    slow, fast = peers
    slow.hold = 2  # answers once a second request arrives
    client = connect(timeout=300, ignore_all_checks=True)
    first = client.encode(['first request'])   # to slow (the first of two idle servers), then to fast
    assert len(encodings(slow)) == 1 and len(encodings(fast)) == 1
    release_slow(slow)
    # The late reply is published (only the other client's, nobody listening, stays queued).
    assert wait_until(lambda: not slow._held and all(f[0] == b'someone-else' for f in slow._queued), 5)
    second = client.encode(['second request'])
    assert first[0, 0] + 1 == second[0, 0], 'a result came back for the wrong request'
    state = client.status
    assert state['num_pending_request'] == 0
    assert state['servers'][address(slow)]['num_timed_out'] == 1


def release_slow(peer):
    """Send the peer a request of another client, so that it publishes what it held."""
    with zmq.Context() as context, context.socket(zmq.PUSH) as push:
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(f'tcp://{LOOPBACK}:{peer.port}')
        push.send_multipart([b'someone-else', b'["hello"]', b'1', b'1'])


def test_timeout_error_when_no_server_answers(peers, connect):
    for peer in peers:
        peer.hold = 10**6
    client = connect(timeout=300)
    with pytest.raises(TimeoutError, match=r'no server answered within timeout=300 ms \(servers that let it '
                                           r'time out: \[.*, .*\]'):
        client.encode(['nobody answers'])
    assert client.status['num_pending_request'] == 0


def test_names_are_resolved_by_the_system_and_an_unknown_one_gives_a_clear_timeout():
    with BertClient(ip=['localhost:7001:7002', '127.0.0.1'], ignore_all_checks=True) as client:
        assert set(client.status['servers']) == {'127.0.0.1:7001:7002', '127.0.0.1:5555:5556'}
    with pytest.raises(TimeoutError, match=r'servers known: none'):
        BertClient(ip=['no-such-host.invalid'], timeout=300)


def test_results_that_arrived_while_nobody_fetched_are_not_taken_for_timeouts(peers, connect):
    client = connect(ip=[address(peers[0])], timeout=300)
    for index in range(5):
        client.encode([f'sentence {index}'], blocking=False)
    assert wait_until(lambda: len(encodings(peers[0])) == 5, 5)
    time.sleep(0.6)  # the results wait in the client's queue past the timeout
    assert len(client.fetch_all()) == 5
    assert client.status['servers'][address(peers[0])]['num_timed_out'] == 0
