"""The unmodified bert-serving-client 1.10.0 from PyPI, with its default arguments, against our server.

It shares the `bert_serving` namespace with our client, so it lives in its own virtual
environment (`.venv-oldclient`, made here on first use) and runs in a subprocess.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from servers import ServerProcess

pytestmark = pytest.mark.slow

OLD_CLIENT_VENV = Path(__file__).resolve().parents[1] / '.venv-oldclient'

OLD_CLIENT_SCRIPT = r'''
import json, sys, warnings
from bert_serving.client import BertClient

port, port_out = int(sys.argv[1]), int(sys.argv[2])
bc = BertClient(port=port, port_out=port_out, timeout=60000)  # every check on, as users run it
out = {'client_version': bc.status['client_version'], 'length_limit': bc.length_limit,
       'token_info': bc.token_info_available}
out['encode'] = bc.encode(['First do it', 'then do it right', 'then do it better']).tolist()
vectors, tokens = bc.encode(['hello world ||| good day'], show_tokens=True)
out['pair'], out['tokens'] = vectors.tolist(), tokens
out['tokenized'] = bc.encode([['hello', 'world']], is_tokenized=True).tolist()
for i in range(5):
    bc.encode(['async sentence %d' % i] * (i + 1), blocking=False)
out['fetch_all'] = [a.tolist() for a in bc.fetch_all(sort=True)]
out['encode_async'] = sorted((r.id, r.embedding.tolist()) for r in
                             bc.encode_async((['generated %d' % i] * 3 for i in range(4)), max_num_batch=4))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    bc.encode([' '.join(['word'] * 40)])
out['length_warning'] = any('max_seq_len' in str(w.message) for w in caught)
out['status_keys'] = sorted(bc.server_status['statistic'])
print(json.dumps(out))
'''


@pytest.fixture(scope='module')
def old_client_python() -> Path:
    python = OLD_CLIENT_VENV / 'bin' / 'python'
    if not python.exists():
        subprocess.run([sys.executable, '-m', 'venv', str(OLD_CLIENT_VENV)], check=True)
        subprocess.run([str(python), '-m', 'pip', 'install', '-q', 'bert-serving-client==1.10.0'], check=True)
    return python


@pytest.fixture(scope='module')
def server(tiny_model_dirs, tmp_path_factory):
    with ServerProcess(tiny_model_dirs['hf'], '-show_tokens_to_client', '-max_batch_size', 2,
                       log_dir=tmp_path_factory.mktemp('logs')) as running:
        yield running


def test_old_client_with_defaults_gets_the_same_vectors_as_ours(old_client_python, server, tmp_path):
    result = subprocess.run([str(old_client_python), '-c', OLD_CLIENT_SCRIPT, str(server.port), str(server.port_out)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    old = json.loads(result.stdout)
    assert old['client_version'] == '1.10.0'
    assert old['length_limit'] == 25 and old['token_info'] is True
    assert old['length_warning']
    with server.client() as ours:
        np.testing.assert_allclose(old['encode'], ours.encode(['First do it', 'then do it right',
                                                               'then do it better']), atol=1e-6)
        vectors, tokens = ours.encode(['hello world ||| good day'], show_tokens=True)
        np.testing.assert_allclose(old['pair'], vectors, atol=1e-6)
        assert old['tokens'] == tokens and tokens[0].count('[SEP]') == 2
        np.testing.assert_allclose(old['tokenized'], ours.encode([['hello', 'world']], is_tokenized=True), atol=1e-6)
        assert [len(rows) for rows in old['fetch_all']] == [1, 2, 3, 4, 5]  # send order, split by max_batch_size 2
        for i, rows in enumerate(old['fetch_all']):
            np.testing.assert_allclose(rows, ours.encode([f'async sentence {i}'] * (i + 1)), atol=1e-6)
        assert len(old['encode_async']) == 4
        for i, (_, rows) in enumerate(old['encode_async']):
            np.testing.assert_allclose(rows, ours.encode([f'generated {i}'] * 3), atol=1e-6)
    assert 'num_data_request' in old['status_keys']


def test_old_client_gets_a_readable_error_instead_of_hanging(old_client_python, server, tmp_path):
    script = ('import sys\nfrom bert_serving.client import BertClient\n'
              'bc = BertClient(port=int(sys.argv[1]), port_out=int(sys.argv[2]), timeout=30000)\n'
              "bc.encode([['hello', '|||']], is_tokenized=True)\n")
    result = subprocess.run([str(old_client_python), '-c', script, str(server.port), str(server.port_out)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode != 0
    assert 'server error (BadRequest)' in result.stderr and 'TimeoutError' not in result.stderr
