"""One client over three real servers on 127.0.0.1, .2 and .3 (same ports, as pods would have), with -bind.

The servers run the CLI with real workers; one is SIGKILLed mid-run and started again on its address.
"""

import os
import signal
import threading
from functools import partial

import numpy as np
import pytest

from bert_serving.client import BertClient, ConcurrentBertClient
from bert_serving.server.benchmark import start_side_by_side
from servers import ServerProcess, free_port, wait_until

pytestmark = pytest.mark.slow

HOSTS = ('127.0.0.1', '127.0.0.2', '127.0.0.3')
TIMEOUT_MS = 30_000   # generous: the machine is shared; a dead server is noticed by its dropped connection
SENTENCES = [f'sentence number {index} says {" ".join(["word"] * (index % 7))} hello' for index in range(200)]


@pytest.fixture(scope='module')
def three_servers(tiny_model_dirs, tmp_path_factory):
    """Three one-worker servers on the same two ports of three loopback addresses, started side by side."""
    ports, logs = (free_port(), free_port()), tmp_path_factory.mktemp('logs')
    running = start_side_by_side([partial(ServerProcess, tiny_model_dirs['hf'], log_dir=logs, bind=host, ports=ports)
                                  for host in HOSTS])
    yield running
    for server in running:
        server.stop()


@pytest.fixture(scope='module')
def expected(three_servers):
    """The vector of each sentence, from a plain client of the first server."""
    with three_servers[0].client() as client:
        return client.encode(SENTENCES)


def texts_of(index):
    """The sentences of request ``index``: one or two, so results of different requests differ."""
    return [SENTENCES[index % 200]] if index % 2 else [SENTENCES[index % 200], SENTENCES[(index * 7 + 1) % 200]]


def check(index, vectors, expected):
    rows = [SENTENCES.index(text) for text in texts_of(index)]
    np.testing.assert_allclose(vectors, expected[rows], atol=1e-5, err_msg=f'request {index}')


def encode_until(client, condition, expected, timeout=30):
    """Send checked requests through ``client`` until ``condition()`` holds (True) or ``timeout`` s pass."""
    requests = iter(range(10**6))

    def one_more_then_condition():
        index = next(requests)
        check(index, client.encode(texts_of(index)), expected)
        return condition()

    return wait_until(one_more_then_condition, timeout)


def data_requests(server):
    """Requests with sentences the server received (its status counter), asked with a plain client."""
    with server.client(timeout=TIMEOUT_MS) as probe:
        return probe.server_status['statistic']['num_data_request']


def test_a_name_with_several_addresses_is_followed_as_its_set_changes(three_servers, expected, tmp_path):
    hosts_file = tmp_path / 'hosts'

    def resolve(name):  # an /etc/hosts-style resolver that the test rewrites
        found = [line.split()[0] for line in hosts_file.read_text().splitlines() if name in line.split()[1:]]
        if not found:
            raise OSError(f'{name} not in {hosts_file}')
        return found

    def servers_known(client):
        return set(client.status['servers'])

    first, second, third = three_servers
    address = ':{}:{}'.format(first.port, first.port_out)
    hosts_file.write_text(f'{HOSTS[0]} bert-pods\n{HOSTS[1]} bert-pods other\n')
    before = [data_requests(server) for server in three_servers]
    with BertClient(ip=['bert-pods'], port=first.port, port_out=first.port_out, resolver=resolve, refresh_s=0.2,
                    timeout=TIMEOUT_MS) as client:
        assert servers_known(client) == {HOSTS[0] + address, HOSTS[1] + address}
        for index in range(20):
            check(index, client.encode(texts_of(index)), expected)
        counts = [data_requests(server) - old for server, old in zip(three_servers, before)]
        assert counts[0] > 0 and counts[1] > 0 and counts[2] == 0, counts

        hosts_file.write_text(f'{HOSTS[1]} bert-pods\n{HOSTS[2]} bert-pods\n')
        assert encode_until(client, lambda: servers_known(client) == {HOSTS[1] + address, HOSTS[2] + address},
                            expected)
        before = [data_requests(server) for server in three_servers]
        for index in range(20):
            check(index, client.encode(texts_of(index)), expected)
        counts = [data_requests(server) - old for server, old in zip(three_servers, before)]
        assert counts[0] == 0 and counts[1] > 0 and counts[2] > 0, counts
        assert set(client.server_status) == {HOSTS[1] + address, HOSTS[2] + address}


def test_3000_requests_from_8_threads_survive_a_server_killed_and_restarted(three_servers, expected, tiny_model_dirs,
                                                                           tmp_path):
    first, victim, third = three_servers
    victim_address = f'{victim.bind}:{victim.port}:{victim.port_out}'
    before = [data_requests(server) for server in three_servers]
    done, shares_before_kill, burst_results, errors = [0], [], [], []
    done_lock = threading.Lock()

    def kill_mid_run():
        """After 1000 requests: 30 more sent at once by another client, then the SIGKILL, then their results."""
        try:
            assert wait_until(lambda: done[0] >= 1000 or errors, timeout=120), f'{done[0]} requests done in 120 s'
            shares_before_kill.extend(data_requests(server) - old for server, old in zip(three_servers, before))
            for index in range(30):
                burst.encode(texts_of(index), blocking=False)
            os.killpg(victim.process.pid, signal.SIGKILL)
            burst_results.extend(burst.fetch_all())
        except Exception as error:  # surfaced below
            errors.append(error)

    def send(thread_index):
        try:
            for index in range(thread_index, 3000, 8):
                check(index, pool.encode(texts_of(index)), expected)
                with done_lock:
                    done[0] += 1
        except Exception as error:  # surfaced below
            errors.append(error)

    with ConcurrentBertClient(max_concurrency=8, ip=list(HOSTS), port=first.port, port_out=first.port_out,
                              timeout=TIMEOUT_MS) as pool, BertClient(
            ip=','.join(HOSTS), port=first.port, port_out=first.port_out, timeout=TIMEOUT_MS) as burst:
        threads = [threading.Thread(target=kill_mid_run)]
        threads += [threading.Thread(target=send, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors[:3]
        assert done[0] == 3000
        assert all(share > 0 for share in shares_before_kill), \
            f'requests per server before the kill: {shares_before_kill}'
        assert len(burst_results) == 30
        for index, vectors in enumerate(burst_results):  # fetch_all: each result once, in the order sent
            check(index, vectors, expected)
        assert victim.stop() == -signal.SIGKILL
        assert burst.status['servers'][victim_address]['num_moved_off'] > 0, 'nothing was in flight there'
        links = [client.status['servers'] for client in [*pool._clients, burst]]
        assert not any(state['num_timed_out'] for servers in links for state in servers.values()), \
            'a request waited for the timeout: the dropped connection went unnoticed'

        restarted = ServerProcess(tiny_model_dirs['hf'], log_dir=tmp_path, bind=victim.bind,
                                  ports=(victim.port, victim.port_out))
        three_servers[1] = restarted  # stopped by the fixture
        assert encode_until(pool, lambda: data_requests(restarted) > 0, expected), 'the restarted server got nothing'
        assert wait_until(lambda: all('statistic' in status for status in burst.server_status.values()), 10)
