"""-task classify on what bert-serving-finetune wrote: a pair classifier trained a few steps on the tiny BERT.

Its probabilities served through our client, the PyPI 1.10.0 client, HTTP /encode, /classify and /rerank
must equal the ``predictions.tsv`` of ``-do_predict`` on the same pairs within 1e-5.
"""

import json
import random
import time

import numpy as np
import pytest
from classifiers import old_client_encode
from finetune_data import BAD, GOOD, sentence

from bert_serving.server.finetune import cli
from servers import ServerProcess, free_port
from test_compat_oldclient import old_client_python  # noqa: F401 (the fixture: the 1.10.0 client's venv)
from test_http import call

pytestmark = pytest.mark.slow

MAX_SEQ_LEN = 24
QUERY = 'good day hello'


def pair_rows(count: int, seed: int) -> list[str]:
    """``text_a, text_b, label`` rows: ``same`` when both texts draw on one word group, else ``other``."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        first = rng.choice([GOOD, BAD])
        second = first if n % 2 else (BAD if first is GOOD else GOOD)
        rows.append(f'{sentence(rng, first)}\t{sentence(rng, second)}\t{"same" if n % 2 else "other"}')
    return rows


@pytest.fixture(scope='module')
def fine_tuned(tiny_model_dirs, tmp_path_factory):
    """(output folder, best checkpoint name, the candidate texts, their predicted probabilities)."""
    data, out = tmp_path_factory.mktemp('pairs'), tmp_path_factory.mktemp('pair-classifier')
    (data / 'train.tsv').write_text('text_a\ttext_b\tlabel\n' + '\n'.join(pair_rows(64, seed=1)) + '\n')
    (data / 'dev.tsv').write_text('text_a\ttext_b\tlabel\n' + '\n'.join(pair_rows(16, seed=2)) + '\n')
    rng = random.Random(3)
    texts = [sentence(rng, GOOD if n % 2 else BAD) for n in range(8)]
    (data / 'predict.tsv').write_text('text_a\ttext_b\n' + ''.join(f'{QUERY}\t{text}\n' for text in texts))
    assert cli.main(['-model_dir', str(tiny_model_dirs['google']), '-data_dir', str(data), '-output_dir', str(out),
                     '-do_train', '-do_predict', '-predict_file', str(data / 'predict.tsv'), '-max_seq_len',
                     str(MAX_SEQ_LEN), '-train_batch_size', '16', '-num_train_epochs', '2', '-learning_rate',
                     '1e-3', '-num_preprocess_workers', '1']) == 0
    lines = (out / 'predictions.tsv').read_text().splitlines()
    assert lines[0] == 'label\tother\tsame' and len(lines) == len(texts) + 1
    predicted = np.array([[float(value) for value in line.split('\t')[1:]] for line in lines[1:]])
    return out, json.loads((out / 'best_checkpoint.json').read_text())['name'], texts, predicted


@pytest.fixture(scope='module')
def server(tiny_model_dirs, fine_tuned, tmp_path_factory):
    out, ckpt_name = fine_tuned[:2]
    http_port = free_port()
    with ServerProcess(tiny_model_dirs['google'], '-tuned_model_dir', out, '-ckpt_name', ckpt_name,
                       '-task', 'classify', '-max_seq_len', MAX_SEQ_LEN, '-http_port', http_port,
                       log_dir=tmp_path_factory.mktemp('logs')) as running:
        running.url = f'http://127.0.0.1:{http_port}'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if call(running.url + '/ready').status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield running


def test_served_probabilities_equal_do_predict(fine_tuned, server):
    _, _, texts, predicted = fine_tuned
    pairs = [f'{QUERY} ||| {text}' for text in texts]
    with server.client() as client:
        np.testing.assert_allclose(client.encode(pairs), predicted, atol=1e-5)
        ranked = client.classify(pairs, top_k=None)
        assert client.server_config['labels'] == ['other', 'same']
    for row, probabilities in zip(ranked, predicted):
        assert {entry['label']: entry['score'] for entry in row} == pytest.approx(
            dict(zip(['other', 'same'], probabilities)), abs=1e-5)
    encoded = call(server.url + '/encode', {'texts': pairs}).json()['result']
    np.testing.assert_allclose(encoded, predicted, atol=1e-5)
    classified = call(server.url + '/classify', {'texts': pairs, 'top_k': None}).json()
    assert classified == [[{'label': e['label'], 'score': pytest.approx(e['score'], abs=1e-5)} for e in row]
                          for row in ranked]


def test_rerank_orders_by_the_predicted_probability_of_same(fine_tuned, server):
    _, _, texts, predicted = fine_tuned
    ranked = call(server.url + '/rerank', {'query': QUERY, 'texts': texts}).json()
    same = predicted[:, 1]
    assert [entry['index'] for entry in ranked] == list(np.argsort(-same, kind='stable'))
    np.testing.assert_allclose([entry['score'] for entry in ranked], np.sort(same)[::-1], atol=1e-5)


def test_pypi_client_1_10_gets_the_predicted_probabilities(old_client_python, fine_tuned, server, tmp_path):
    _, _, texts, predicted = fine_tuned
    pairs = [f'{QUERY} ||| {text}' for text in texts]
    np.testing.assert_allclose(old_client_encode(old_client_python, server, pairs, tmp_path), predicted, atol=1e-5)
