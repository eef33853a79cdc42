"""End to end over real sockets: the CLI server, real worker processes, our client."""

import json
import subprocess
import threading
import time

import numpy as np
import pytest
import zmq

from bert_serving.client import BertClient, ServerError
from servers import BIN, ServerProcess, frozen, wait_until, worker_pids

pytestmark = pytest.mark.slow

WORDS = ('the quick brown fox jumps over lazy dog hello world first do it then right better '
         'sentence encoding maps text to vectors with bert served over sockets').split()


def sentences(count: int, seed: int = 0) -> list[str]:
    """Distinct sentences of varied lengths."""
    rng = np.random.default_rng(seed)
    return [' '.join(rng.choice(WORDS, size=int(rng.integers(1, 12)))) + f' {index}' for index in range(count)]


@pytest.fixture(scope='module')
def server(tiny_model_dirs, tmp_path_factory):
    """Two workers, small batches so that big requests are split across them."""
    with ServerProcess(tiny_model_dirs['hf'], '-max_batch_size', 64, '-show_tokens_to_client', num_worker=2,
                       log_dir=tmp_path_factory.mktemp('logs')) as running:
        yield running


def test_5000_sentences_keep_their_order_across_two_workers(server):
    texts = sentences(5000)
    with server.client() as client:
        vectors = client.encode(texts)
        assert vectors.shape == (5000, 32) and vectors.dtype == np.float32
        permutation = np.random.default_rng(1).permutation(len(texts))
        shuffled = client.encode([texts[i] for i in permutation])
        np.testing.assert_allclose(shuffled, vectors[permutation], atol=1e-5)
        for index in (0, 63, 64, 2500, 4999):  # rows equal the sentence encoded alone
            np.testing.assert_allclose(client.encode([texts[index]])[0], vectors[index], atol=1e-5)
        assert client.server_status['statistic']['num_forward_pass'] >= 5000 // 64


def test_small_request_overtakes_a_big_job(server):
    with server.client() as observer, server.client(timeout=120_000) as big, server.client() as small:
        def requests_arrived():
            return observer.server_status['statistic']['num_data_request']

        before, pids = requests_arrived(), worker_pids(observer).values()
        with frozen(pids):  # both requests are queued before any row runs
            big.encode(sentences(20_000, seed=2), blocking=False)
            assert wait_until(lambda: requests_arrived() == before + 1)  # the big one is queued first
            small.encode(['a small urgent request'], blocking=False)
            assert wait_until(lambda: requests_arrived() == before + 2)
        assert next(small.fetch()).embedding.shape == (1, 32)
        with frozen(pids):  # the big job's rows stay where they are while a slow machine reads the queue
            queued = observer.server_status['statistic']['num_queued_row']
        assert queued > 0, 'the small request waited for the big one'
        assert next(big.fetch()).embedding.shape == (20_000, 32)


def test_concurrent_clients_each_get_exactly_their_rows(server):
    results, errors = {}, []

    def run(index):
        try:
            texts = sentences(50 + index * 7, seed=100 + index)
            with server.client() as client:
                results[index] = (texts, client.encode(texts))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with server.client() as checker:
        for texts, vectors in results.values():
            assert len(vectors) == len(texts)
            np.testing.assert_allclose(checker.encode(texts), vectors, atol=1e-5)


def test_single_sentences_from_16_clients_share_forward_passes(server):
    with server.client() as probe:
        before = probe.server_status['statistic']
    barrier = threading.Barrier(16)

    def run(index):
        with server.client() as client:
            barrier.wait()
            for text in sentences(20, seed=200 + index):
                client.encode([text])

    threads = [threading.Thread(target=run, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with server.client() as probe:
        after = probe.server_status['statistic']
    requests = after['num_data_request'] - before['num_data_request']
    passes = after['num_forward_pass'] - before['num_forward_pass']
    assert requests == 320
    assert passes < requests / 2, f'{passes} forward passes for {requests} one-sentence requests'
    assert after['max_rows_per_forward_pass'] >= 4


def test_multicast_to_clones_with_one_identity(server):
    # The clone asks nothing at start (ignore_all_checks): a reply to it would be published at once, the
    # identity being subscribed by the sender already, and lost if its own subscription were not up yet.
    with server.client(identity='shared-id') as sender, \
            server.client(identity='shared-id', timeout=10_000, ignore_all_checks=True) as clone:
        received = []
        listener = threading.Thread(target=lambda: received.append(next(clone.listen())))
        listener.start()
        time.sleep(0.3)
        vectors = sender.encode(['hello world', 'good day'])
        listener.join(10)
        assert received and np.allclose(received[0].embedding, vectors)


def test_encode_async_and_fetch_all_in_order(server):
    batches = [sentences(10 + i, seed=300 + i) for i in range(12)]
    with server.client() as client:
        streamed = list(client.encode_async(iter(batches), max_num_batch=12))
        assert len(streamed) == 12
        for texts in batches:
            client.encode(texts, blocking=False)
        ordered = client.fetch_all(sort=True)
        for texts, vectors in zip(batches, ordered):
            assert len(vectors) == len(texts)
        assert client.fetch_all() is None  # nothing left pending
        concatenated = np.concatenate(ordered)
        np.testing.assert_allclose(client.encode([t for b in batches for t in b]), concatenated, atol=1e-5)


def test_tokens_pairs_and_pre_tokenized_input(server):
    with server.client() as client:
        vectors, tokens = client.encode(['hello world', 'hello ||| world'], show_tokens=True)
        assert tokens[0][0] == '[CLS]' and tokens[0][-1] == '[SEP]'
        assert tokens[1].count('[SEP]') == 2
        assert not np.allclose(vectors[0], vectors[1])
        by_tokens = client.encode([['hello', 'world']], is_tokenized=True)
        np.testing.assert_allclose(by_tokens[0], vectors[0], atol=1e-5)
        as_list = server.client(output_fmt='list').encode(['hello world'])
        assert isinstance(as_list, list) and np.allclose(as_list[0], vectors[0], atol=1e-5)


def test_config_and_status_replies(server):
    with server.client() as client:
        config = client.server_config
        assert config['server_version'] == '1.10.0'
        assert config['pooling_strategy'] == 'REDUCE_MEAN' and config['pooling_layer'] == [-2]
        assert config['max_seq_len'] == 25 and config['num_worker'] == 2 and config['max_batch_size'] == 64
        for key in ('tensorflow_version', 'python_version', 'pyzmq_version', 'zmq_version', 'server_start_time',
                    'num_process', 'device_map', 'client', 'server_current_time', 'ventilator -> worker'):
            assert key in config, key
        assert config['client'] == client.identity.decode()
        statistic = client.server_status['statistic']
        assert statistic['num_ready_worker'] == 2 and statistic['num_data_request'] >= 0
        workers = statistic['workers']
        assert [worker['id'] for worker in workers] == [0, 1] and all(worker['ready'] for worker in workers)
        assert sum(worker['forward_passes'] for worker in workers) == statistic['num_forward_pass']


def test_malformed_frames_get_an_error_and_do_not_disturb_others(server):
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.connect(f'tcp://127.0.0.1:{server.port}')
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b'fuzzer')
    sub.connect(f'tcp://127.0.0.1:{server.port_out}')
    time.sleep(0.3)
    bad = [[b'fuzzer'], [b'fuzzer', b'["x"]', b'1'], [b'fuzzer', b'not json', b'2', b'1'],
           [b'fuzzer', b'[1, 2]', b'3', b'2'], [b'fuzzer', b'["ok"]', b'-4', b'1'], [b'fuzzer', b'[""]', b'5', b'1'],
           [b'fuzzer', b'["a"]', b'6', b'9'], [b'\xff' * 300, b'["a"]', b'7', b'1']]
    for frames in bad:
        push.send_multipart(frames)
    replies = []
    while sub.poll(3000):
        replies.append(sub.recv_multipart())
    assert sorted(int(r[-1]) for r in replies) == [1, 2, 3, 5, 6]
    for reply in replies:
        assert 'error' in json.loads(reply[1]) and reply[2] == b''
    push.close(0), sub.close(0), context.term()
    with server.client() as client:
        assert client.encode(['still serving']).shape == (1, 32)
        # passes the client's checks, fails in the worker: a pair with an empty second side
        with pytest.raises(ServerError, match=r'texts\[0\].*second sentence'):
            client.encode([['hello', '|||']], is_tokenized=True)
        assert client.encode(['served after the error']).shape == (1, 32)
        assert client.server_status['statistic']['num_bad_request'] >= 5


def test_dynamic_max_seq_len_and_token_level_output(tiny_model_dirs, tmp_path):
    with ServerProcess(tiny_model_dirs['google'], '-max_seq_len', 'NONE', '-pooling_strategy', 'NONE',
                       log_dir=tmp_path) as running:
        with running.client(check_length=True) as client:
            assert client.server_config['max_seq_len'] is None
            short = client.encode(['hi'])
            longer = client.encode(['hi', 'a much longer sentence with many more words in it'])
        assert short.shape == (1, 3, 32)  # [CLS] hi [SEP]
        assert longer.shape[1] > 3 and np.abs(longer[0, 3:]).sum() == 0
        np.testing.assert_allclose(longer[0, :3], short[0], atol=1e-5)


def test_terminate_with_the_cli(tiny_model_dirs, tmp_path):
    running = ServerProcess(tiny_model_dirs['hf'], log_dir=tmp_path)
    children = running.child_pids()
    result = subprocess.run([str(BIN / 'bert-serving-terminate'), '-port', str(running.port)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert running.process.wait(15) == 0
    assert not running.wait_for_no_processes(), f'orphans left of {children}'
    assert 'optimized graph written to' in running.log()
    graph_path = running.log().split('optimized graph written to ')[1].split(' in ')[0]
    assert not (tmp_path / graph_path).exists()


def test_terminate_without_a_server_fails_fast_and_clearly():
    from servers import free_port
    started = time.monotonic()
    result = subprocess.run([str(BIN / 'bert-serving-terminate'), '-port', str(free_port()), '-timeout', '1000'],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert 'no server answered' in result.stderr
    assert time.monotonic() - started < 10


def test_sigterm_stops_every_process_and_removes_the_graph(tiny_model_dirs, tmp_path):
    graph_dir = tmp_path / 'graphs'
    graph_dir.mkdir()
    running = ServerProcess(tiny_model_dirs['hf'], '-graph_tmp_dir', graph_dir, num_worker=2, log_dir=tmp_path)
    assert len(running.child_pids()) >= 4  # CLI + sink + 2 workers
    assert list(graph_dir.iterdir())
    started = time.monotonic()
    assert running.stop() == 0
    assert time.monotonic() - started < 10
    assert not running.wait_for_no_processes()
    assert not list(graph_dir.iterdir())


def test_bert_server_from_python_and_shutdown(tiny_model_dirs):
    from bert_serving.server import BertServer, get_args_parser, get_shutdown_parser
    from servers import free_port

    port, port_out = free_port(), free_port()
    args = get_args_parser().parse_args(['-model_dir', str(tiny_model_dirs['hf']), '-port', str(port),
                                         '-port_out', str(port_out), '-cpu', '-bind', '127.0.0.1'])
    server = BertServer(args)
    server.start()
    server.wait_until_ready(120)
    with BertClient(port=port, port_out=port_out, timeout=30_000) as client:
        assert client.encode(['from python']).shape == (1, 32)
    BertServer.shutdown(get_shutdown_parser().parse_args(['-port', str(port)]))
    server.join(15)
    assert not server.is_alive() and server.exception is None
