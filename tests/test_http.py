"""The HTTP proxy over real HTTP (urllib), in front of a real server running the tiny model."""

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bert_serving.server.args import get_args_parser
from bert_serving.server.http import HttpConfig
from servers import ServerProcess, free_port, wait_until

pytestmark = pytest.mark.slow

TEXTS = ['hello world', 'good day!', 'the quick brown fox jumps over the lazy dog']
BODY_LIMIT = 64 * 1024
TOKEN = 's3cret-token'
ALLOWED_ORIGIN = 'http://allowed.example'


class ProxyProcess:
    """``python -m bert_serving.server.http`` on a free port, in front of ``port``/``port_out``."""

    def __init__(self, port, port_out, *options, log_dir):
        self.http_port = free_port()
        self.url = f'http://127.0.0.1:{self.http_port}'
        self.log_path = Path(log_dir) / f'http-{self.http_port}.log'
        self._log = open(self.log_path, 'wb')
        command = [sys.executable, '-m', 'bert_serving.server.http', '-http_port', self.http_port, '-port', port,
                   '-port_out', port_out, '-bind', '127.0.0.1', *options]
        self.process = subprocess.Popen(list(map(str, command)), stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_for_health()

    @classmethod
    def in_front_of(cls, server: ServerProcess, *options, log_dir):
        return cls(server.port, server.port_out, *options, log_dir=log_dir)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def _wait_for_health(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'HTTP proxy exited with {self.process.returncode}:\n{self.log()}')
            try:
                if call(self.url + '/health').status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f'HTTP proxy not up within {timeout} s:\n{self.log()}')

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Reply(NamedTuple):
    status: int
    headers: dict
    body: bytes

    def json(self):
        assert self.headers.get('content-type', '').startswith('application/json'), self.headers
        return json.loads(self.body)


def call(url, body=None, headers=None, method=None, timeout=60) -> Reply:
    """One HTTP request with the standard library; 4xx/5xx come back as replies, not exceptions.

    ``body``: bytes as they are, str as form data, anything else as JSON.
    """
    headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        if isinstance(body, str):
            headers.setdefault('Content-Type', 'application/x-www-form-urlencoded')
        else:
            headers.setdefault('Content-Type', 'application/json')
            body = json.dumps(body)
        body = body.encode()
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def metric_values(url, headers=None) -> dict:
    """Samples of /metrics, parsed by prometheus_client: {(name, sorted label items): value}."""
    reply = call(url + '/metrics', headers=headers)
    assert reply.status == 200 and reply.headers['content-type'].startswith('text/plain')
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(reply.body.decode()) for sample in family.samples}


@pytest.fixture(scope='module')
def logs(tmp_path_factory):
    return tmp_path_factory.mktemp('logs')


@pytest.fixture(scope='module')
def server(tiny_model_dirs, logs):
    with ServerProcess(tiny_model_dirs['hf'], '-show_tokens_to_client', log_dir=logs) as running:
        yield running


@pytest.fixture(scope='module')
def client(server):
    with server.client(check_length=False) as bert_client:
        yield bert_client


@pytest.fixture(scope='module')
def proxy(server, logs):
    """Default settings: CORS for every origin, no token."""
    with ProxyProcess.in_front_of(server, '-max_body_bytes', BODY_LIMIT, log_dir=logs) as running:
        yield running


@pytest.fixture(scope='module')
def guarded(server, logs):
    """One allowed origin and a bearer token."""
    with ProxyProcess.in_front_of(server, '-cors', ALLOWED_ORIGIN, '-auth_token', TOKEN, log_dir=logs) as running:
        yield running


# ---- the 1.10 endpoints -----------------------------------------------------------------

def test_encode_json_returns_the_vectors_of_bert_client(proxy, client):
    reply = call(proxy.url + '/encode', {'id': 123, 'texts': TEXTS, 'is_tokenized': False})
    assert reply.status == 200
    answer = reply.json()
    assert answer['id'] == 123 and answer['status'] == 200
    np.testing.assert_array_equal(np.array(answer['result'], dtype=np.float32), client.encode(TEXTS))


def test_encode_pretokenized(proxy, client):
    tokens = [['hello', 'world'], ['good', 'day']]
    answer = call(proxy.url + '/encode', {'id': 'abc', 'texts': tokens, 'is_tokenized': True}).json()
    assert answer['id'] == 'abc'
    np.testing.assert_array_equal(np.array(answer['result'], dtype=np.float32),
                                  client.encode(tokens, is_tokenized=True))


@pytest.mark.parametrize('form', [
    urllib.parse.urlencode([('id', '7'), ('texts', TEXTS[0]), ('texts', TEXTS[1])]),
    urllib.parse.urlencode({'id': '7', 'texts': json.dumps(TEXTS[:2])}),
], ids=['repeated-fields', 'json-list-field'])
def test_encode_form_body(proxy, client, form):
    answer = call(proxy.url + '/encode', form).json()
    assert answer['id'] == '7'
    np.testing.assert_array_equal(np.array(answer['result'], dtype=np.float32), client.encode(TEXTS[:2]))


def test_encode_form_pretokenized(proxy, client):
    form = urllib.parse.urlencode({'texts': json.dumps([['hello', 'world']]), 'is_tokenized': 'true'})
    answer = call(proxy.url + '/encode', form).json()
    np.testing.assert_array_equal(np.array(answer['result'], dtype=np.float32),
                                  client.encode([['hello', 'world']], is_tokenized=True))


def test_json_sent_as_a_form_like_curl_d_does(proxy):
    reply = call(proxy.url + '/encode', json.dumps({'texts': ['hello']}).encode(),
                 headers={'Content-Type': 'application/x-www-form-urlencoded'})
    assert reply.status == 200 and len(reply.json()['result']) == 1


def test_status_endpoints(proxy, server):
    status = call(proxy.url + '/status/server').json()
    assert status['port'] == server.port and status['statistic']['num_ready_worker'] == 1
    client_status = call(proxy.url + '/status/client').json()
    assert client_status['port'] == server.port and client_status['max_concurrency'] == 10
    assert isinstance(client_status['identity'], str)


# ---- the OpenAI-shaped endpoint ---------------------------------------------------------

def test_embeddings_equal_bert_client_encode(proxy, client):
    reply = call(proxy.url + '/v1/embeddings', {'input': TEXTS, 'model': 'my-bert'})
    assert reply.status == 200
    answer = reply.json()
    assert answer['object'] == 'list' and answer['model'] == 'my-bert'
    assert [item['index'] for item in answer['data']] == [0, 1, 2]
    assert all(item['object'] == 'embedding' for item in answer['data'])
    vectors, tokens = client.encode(TEXTS, show_tokens=True)
    np.testing.assert_array_equal(np.array([item['embedding'] for item in answer['data']], dtype=np.float32),
                                  vectors)
    # The server sends its tokenization, so usage counts its tokens ([CLS] and [SEP] included).
    assert answer['usage'] == {'prompt_tokens': sum(map(len, tokens)), 'total_tokens': sum(map(len, tokens))}


def test_embeddings_base64_and_single_string(proxy, client, tiny_model_dirs):
    answer = call(proxy.url + '/v1/embeddings', {'input': TEXTS[2], 'encoding_format': 'base64'}).json()
    assert len(answer['data']) == 1
    vector = np.frombuffer(base64.b64decode(answer['data'][0]['embedding']), dtype='<f4')
    np.testing.assert_array_equal(vector, client.encode([TEXTS[2]])[0])
    assert answer['model'] == Path(tiny_model_dirs['hf']).name  # no model given: the model folder's name


# ---- probes, metrics and the API description --------------------------------------------

def test_health_and_ready(proxy):
    assert call(proxy.url + '/health').json()['alive'] is True
    ready = call(proxy.url + '/ready')
    assert ready.status == 200 and ready.json() == {'status': 200, 'ready': True, 'num_ready_worker': 1,
                                                    'num_worker': 1}


def test_metrics_count_requests_sentences_errors_and_read_the_server(proxy):
    before = metric_values(proxy.url)
    assert call(proxy.url + '/encode', {'texts': TEXTS}).status == 200
    assert call(proxy.url + '/encode', {'texts': []}).status == 400
    after = metric_values(proxy.url)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew('bert_http_requests_total', endpoint='/encode', method='POST', status='200') == 1
    assert grew('bert_http_requests_total', endpoint='/encode', method='POST', status='400') == 1
    assert grew('bert_http_sentences_total') == len(TEXTS)
    assert grew('bert_http_tokens_total', source='server') > len(TEXTS)
    assert grew('bert_http_errors_total', kind='bad_request') == 1
    assert grew('bert_http_request_duration_seconds_count', endpoint='/encode') == 2
    assert after[('bert_http_request_duration_seconds_bucket', (('endpoint', '/encode'), ('le', '+Inf')))] >= 2
    assert after[('bert_server_up', ())] == 1
    assert after[('bert_server_ready_workers', ())] == after[('bert_server_workers', ())] == 1
    assert grew('bert_server_forward_passes_total') >= 1
    assert grew('bert_server_sequences_total') == len(TEXTS)
    for gauge in ('bert_server_queued_rows', 'bert_server_pending_jobs', 'bert_server_rows_per_forward_pass_avg',
                  'bert_server_rows_per_forward_pass_max'):
        assert (gauge, ()) in after
    assert grew('bert_server_worker_forward_passes_total', worker='0') >= 1
    assert grew('bert_server_worker_rows_total', worker='0') == len(TEXTS)
    assert after[('bert_server_worker_ready', (('worker', '0'),))] == 1


def test_openapi_lists_every_endpoint(proxy):
    document = call(proxy.url + '/openapi.json').json()
    assert document['openapi'].startswith('3.')
    assert set(document['paths']) == {'/encode', '/v1/embeddings', '/status/server', '/status/client', '/health',
                                      '/ready', '/metrics', '/openapi.json', '/classify', '/rerank'}
    assert set(document['paths']['/encode']['post']['requestBody']['content']) == {
        'application/json', 'application/x-www-form-urlencoded'}


# ---- CORS and compression ---------------------------------------------------------------

def test_cors_allows_every_origin_by_default(proxy):
    reply = call(proxy.url + '/status/server', headers={'Origin': 'http://anywhere.example'})
    assert reply.headers['access-control-allow-origin'] == '*'
    preflight = call(proxy.url + '/encode', method='OPTIONS', headers={
        'Origin': 'http://anywhere.example', 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type'})
    assert preflight.status == 200 and 'POST' in preflight.headers['access-control-allow-methods']


def test_cors_restricted_to_the_configured_origin(guarded):
    auth = {'Authorization': f'Bearer {TOKEN}'}
    allowed = call(guarded.url + '/health', headers={'Origin': ALLOWED_ORIGIN, **auth})
    assert allowed.headers['access-control-allow-origin'] == ALLOWED_ORIGIN
    other = call(guarded.url + '/health', headers={'Origin': 'http://evil.example', **auth})
    assert other.status == 200 and 'access-control-allow-origin' not in other.headers
    # A browser's preflight carries no token; it must pass for the allowed origin.
    preflight = call(guarded.url + '/encode', method='OPTIONS', headers={
        'Origin': ALLOWED_ORIGIN, 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type'})
    assert preflight.status == 200 and preflight.headers['access-control-allow-origin'] == ALLOWED_ORIGIN


@pytest.mark.parametrize('encoding, decompress', [('gzip', gzip.decompress), ('deflate', zlib.decompress)])
def test_compressed_when_the_client_accepts(proxy, encoding, decompress):
    reply = call(proxy.url + '/encode', {'id': 1, 'texts': TEXTS}, headers={'Accept-Encoding': encoding})
    assert reply.status == 200 and reply.headers['content-encoding'] == encoding
    assert len(json.loads(decompress(reply.body))['result']) == len(TEXTS)


def test_not_compressed_when_not_asked(proxy):
    reply = call(proxy.url + '/encode', {'id': 1, 'texts': TEXTS})
    assert 'content-encoding' not in reply.headers and reply.json()['status'] == 200


# ---- errors -----------------------------------------------------------------------------

BAD_REQUESTS = {
    'missing texts': ('/encode', {'id': 1}, 400, 'missing "texts"'),
    'texts not a list': ('/encode', {'texts': 'hello'}, 400, 'texts must be a list of str'),
    'texts item not a string': ('/encode', {'texts': ['ok', 3]}, 400, 'texts[1] is int'),
    'empty list': ('/encode', {'texts': []}, 400, 'empty list'),
    'empty sentence': ('/encode', {'texts': ['ok', '  ']}, 400, 'texts[1] is empty'),
    'flat list with is_tokenized': ('/encode', {'texts': ['a b'], 'is_tokenized': True}, 400, 'texts[0] is str'),
    'is_tokenized not a bool': ('/encode', {'texts': ['a'], 'is_tokenized': 'yes'}, 400, '"is_tokenized" must'),
    'id not a scalar': ('/encode', {'id': [1], 'texts': ['a']}, 400, '"id" must be'),
    'bad form flag': ('/encode', 'texts=a&is_tokenized=maybe', 400, 'is_tokenized must be true or false'),
    'bad JSON': ('/encode', b'{"texts": [', 400, 'not valid JSON'),
    'JSON not an object': ('/encode', b'["a", "b"]', 400, 'must be an object'),
    'empty body': ('/encode', b'', 400, 'body is empty'),
    'body too large': ('/encode', {'texts': ['x' * BODY_LIMIT]}, 413, f'limit of {BODY_LIMIT} bytes'),
    'missing input': ('/v1/embeddings', {'model': 'x'}, 400, 'missing "input"'),
    'input a number': ('/v1/embeddings', {'input': 5}, 400, '"input" must be a string or a list'),
    'token ids': ('/v1/embeddings', {'input': [[1, 2, 3]]}, 400, 'token-id input is not supported'),
    'empty input list': ('/v1/embeddings', {'input': []}, 400, 'empty list'),
    'empty input string': ('/v1/embeddings', {'input': ''}, 400, 'input[0] is empty'),
    'bad encoding_format': ('/v1/embeddings', {'input': 'a', 'encoding_format': 'int8'}, 400, '"encoding_format"'),
    'unknown path': ('/v2/nothing', {'texts': ['a']}, 404, 'not found'),
}


@pytest.mark.parametrize('path, body, status, message', BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_requests_get_a_json_error_saying_what_is_wrong(proxy, path, body, status, message):
    headers = {'Content-Type': 'application/json'} if isinstance(body, bytes) else {}
    reply = call(proxy.url + path, body, headers=headers)
    assert reply.status == status
    answer = reply.json()
    assert answer['status'] == status and message.lower() in answer['error'].lower(), answer
    assert b'Traceback' not in reply.body


def test_wrong_method_is_a_json_405(proxy):
    reply = call(proxy.url + '/encode')
    assert reply.status == 405 and reply.json()['status'] == 405


def test_token_required_when_configured(guarded):
    for headers in ({}, {'Authorization': 'Bearer wrong'}, {'Authorization': TOKEN}):
        reply = call(guarded.url + '/encode', {'texts': ['a']}, headers=headers)
        assert reply.status == 401 and 'Authorization: Bearer' in reply.json()['error']
    assert call(guarded.url + '/metrics').status == 401
    reply = call(guarded.url + '/encode', {'texts': ['a']}, headers={'Authorization': f'Bearer {TOKEN}'})
    assert reply.status == 200 and len(reply.json()['result']) == 1
    # Probes of load balancers carry no token.
    assert call(guarded.url + '/health').status == 200 and call(guarded.url + '/ready').status == 200
    assert call(guarded.url + '/openapi.json', headers={'Authorization': f'Bearer {TOKEN}'}).json()['security']


def test_a_server_that_does_not_answer_gives_504_and_not_ready(logs):
    with ProxyProcess(free_port(), free_port(), '-request_timeout_ms', 300, log_dir=logs) as orphan:
        reply = call(orphan.url + '/encode', {'texts': ['a']})
        assert reply.status == 504 and 'did not answer within 300 ms' in reply.json()['error']
        assert call(orphan.url + '/status/server').status == 504
        assert call(orphan.url + '/ready').status == 503
        assert call(orphan.url + '/health').status == 200
        assert metric_values(orphan.url)[('bert_server_up', ())] == 0


@pytest.mark.parametrize('bind, listens_on, server_ip', [('*', '0.0.0.0', 'localhost'),
                                                          ('127.0.0.1', '127.0.0.1', '127.0.0.1')])
def test_config_from_the_server_options(bind, listens_on, server_ip):
    args = get_args_parser().parse_args(['-model_dir', 'm', '-http_port', '8125', '-http_max_connect', '3',
                                         '-cors', ALLOWED_ORIGIN, '-port', '6000', '-bind', bind])
    config = HttpConfig.from_args(args, parent_pid=42)
    assert (config.http_port, config.port, config.port_out, config.http_max_connect) == (8125, 6000, 5556, 3)
    assert (config.bind, config.server_ip, config.parent_pid) == (listens_on, server_ip, 42)
    assert config.cors_origins == [ALLOWED_ORIGIN] and config.auth_token is None


def test_proxy_exits_when_its_parent_has_gone(logs):
    port = free_port()
    # A shell starts the proxy with itself as parent, prints the proxy's pid, and is then killed.
    parent = subprocess.Popen(
        ['/bin/sh', '-c', f'"{sys.executable}" -m bert_serving.server.http -http_port {port} -bind 127.0.0.1 '
                          f'-parent_pid $$ >"{logs}/orphan.log" 2>&1 & echo $!; exec sleep 60'],
        stdout=subprocess.PIPE, text=True)
    proxy_pid = int(parent.stdout.readline())
    assert wait_until(lambda: answers(f'http://127.0.0.1:{port}/health'), timeout=30), \
        (Path(logs) / 'orphan.log').read_text()
    parent.kill()
    parent.wait()
    assert wait_until(lambda: not Path(f'/proc/{proxy_pid}').exists() or _state(proxy_pid) == 'Z', timeout=10), \
        'the proxy outlived its parent'
    assert not answers(f'http://127.0.0.1:{port}/health')


def test_the_app_process_exits_when_the_proxy_is_killed(logs):
    with ProxyProcess(free_port(), free_port(), log_dir=logs) as proxy:
        app_pids = _children(proxy.process.pid)  # granian's worker, which runs the Flask app
        assert len(app_pids) == 1, app_pids
        proxy.process.kill()
        proxy.process.wait()
        assert wait_until(lambda: _state(app_pids[0]) in ('gone', 'Z'), timeout=10), 'the app outlived the proxy'
        assert not answers(proxy.url + '/health')


def test_a_killed_app_process_is_replaced(logs):
    with ProxyProcess(free_port(), free_port(), log_dir=logs) as proxy:
        [app_pid] = _children(proxy.process.pid)
        os.kill(app_pid, signal.SIGKILL)
        assert wait_until(lambda: _children(proxy.process.pid) not in ([], [app_pid]), timeout=10), proxy.log()
        assert wait_until(lambda: answers(proxy.url + '/health'), timeout=30), proxy.log()
        assert 'E:HTTP:[granian] Unexpected exit from worker-1' in proxy.log()


def test_a_taken_port_is_one_clear_error(proxy, logs):
    run = subprocess.run([sys.executable, '-m', 'bert_serving.server.http', '-http_port', str(proxy.http_port),
                          '-bind', '127.0.0.1'], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip().endswith(f'cannot listen on 127.0.0.1:{proxy.http_port}: Address already in use')
    assert 'Traceback' not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert call(proxy.url + '/encode', {'texts': ['still here']}).status == 200


def test_a_server_whose_http_port_is_taken_stops_with_a_clear_error(proxy, tiny_model_dirs, logs):
    with pytest.raises(RuntimeError, match='server exited with 1') as failed:
        ServerProcess(tiny_model_dirs['hf'], '-http_port', proxy.http_port, log_dir=logs)
    assert (f'cannot listen on 127.0.0.1:{proxy.http_port} (Address already in use): is another server using it? '
            'choose another -http_port') in str(failed.value)
    assert 'Traceback' not in str(failed.value)


def _children(pid) -> list[int]:
    return [int(child) for child in Path(f'/proc/{pid}/task/{pid}/children').read_text().split()]


def answers(url) -> bool:
    """True when ``url`` answers 200; False for any other status or no answer."""
    try:
        return call(url, timeout=2).status == 200
    except OSError:
        return False


def _state(pid) -> str:
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return 'gone'


def test_http_port_option_starts_the_proxy_with_the_server(tiny_model_dirs, logs):
    http_port = free_port()
    with ServerProcess(tiny_model_dirs['hf'], '-http_port', http_port, '-http_auth_token', TOKEN,
                       log_dir=logs) as running:
        url = f'http://127.0.0.1:{http_port}'
        wait_until(lambda: answers(url + '/ready'), timeout=30)
        assert call(url + '/encode', {'id': 1, 'texts': ['hi']}).status == 401
        reply = call(url + '/encode', {'id': 1, 'texts': ['hello world']},
                     headers={'Authorization': f'Bearer {TOKEN}'})
        assert reply.status == 200
        with running.client() as client:
            np.testing.assert_allclose(reply.json()['result'], client.encode(['hello world']), atol=1e-6)
            assert client.server_config['num_process'] == 4  # ventilator, sink, worker, HTTP proxy
            assert client.server_config['auth_token'] == 'HIDDEN'  # every client can read the config
    assert not running.wait_for_no_processes()
