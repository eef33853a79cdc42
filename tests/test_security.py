"""Opt-in CurveZMQ: only clients whose key the server holds get in, and only they see results."""

import subprocess
import threading
import time

import numpy as np
import pytest

from bert_serving.client import BertClient
from servers import BIN, ServerProcess, free_port, wait_until
from test_http import answers, call

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp('keys')
    result = subprocess.run([str(BIN / 'bert-serving-keys'), '-out', str(folder), '-clients', 'alice', 'mallory'],
                            capture_output=True, text=True, check=True)
    assert 'curve_secret_key' in result.stdout
    (folder / 'clients' / 'mallory.key').unlink()  # mallory has a key pair, but the server does not know it
    return folder


def test_only_clients_with_a_known_key_are_served(tiny_model_dirs, keys, tmp_path):
    with ServerProcess(tiny_model_dirs['hf'], '-curve_secret_key', keys / 'server.key_secret',
                       '-curve_client_keys', keys / 'clients', log_dir=tmp_path, probe_keys={
                           'server_public_key': keys / 'server.key',
                           'client_secret_key': keys / 'alice' / 'alice.key_secret'}) as server:
        alice = server.client(server_public_key=keys / 'server.key',
                              client_secret_key=keys / 'alice' / 'alice.key_secret', identity='alice-id')
        mallory_options = dict(port=server.port, port_out=server.port_out, timeout=2000, ignore_all_checks=True,
                               identity='alice-id')
        with alice, \
                BertClient(server_public_key=keys / 'server.key',
                           client_secret_key=keys / 'mallory' / 'mallory.key_secret', **mallory_options) as mallory, \
                BertClient(**mallory_options) as plain:
            eavesdropped = []
            listeners = [threading.Thread(target=lambda c=c: eavesdropped.extend(_listen_once(c)))
                         for c in (mallory, plain)]
            for listener in listeners:
                listener.start()
            time.sleep(0.5)
            vectors = alice.encode(['a secret sentence'])
            assert vectors.shape == (1, 32)
            for listener in listeners:
                listener.join(10)
            assert eavesdropped == [], 'a client without an accepted key received results'
            for outsider in (mallory, plain):
                with pytest.raises(TimeoutError):
                    outsider.encode(['let me in'])
            np.testing.assert_allclose(alice.encode(['a secret sentence']), vectors, atol=1e-6)


def test_the_http_proxy_gets_in_with_a_key_of_its_own(tiny_model_dirs, keys, tmp_path):
    alice_keys = {'server_public_key': keys / 'server.key', 'client_secret_key': keys / 'alice' / 'alice.key_secret'}
    http_port = free_port()
    with ServerProcess(tiny_model_dirs['hf'], '-curve_secret_key', keys / 'server.key_secret',
                       '-curve_client_keys', keys / 'clients', '-http_port', http_port, log_dir=tmp_path,
                       probe_keys=alice_keys) as server:
        url = f'http://127.0.0.1:{http_port}'
        assert wait_until(lambda: answers(url + '/ready')), server.log()
        reply = call(url + '/encode', {'id': 7, 'texts': ['a secret sentence']})
        assert reply.status == 200
        with server.client(**alice_keys) as alice:
            np.testing.assert_allclose(reply.json()['result'], alice.encode(['a secret sentence']), atol=1e-6)
        assert not (keys / 'clients' / 'http-proxy.key').exists()  # the users' folder is left as it was


def _listen_once(client):
    try:
        return [next(client.listen())]
    except (TimeoutError, StopIteration):
        return []


def test_half_a_key_configuration_is_refused_clearly(tiny_model_dirs, keys):
    result = subprocess.run([str(BIN / 'bert-serving-start'), '-model_dir', str(tiny_model_dirs['hf']),
                             '-port', str(free_port()), '-curve_secret_key', str(keys / 'server.key_secret')],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert '-curve_secret_key and -curve_client_keys go together' in result.stderr
