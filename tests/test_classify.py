"""-task classify: the head of a fine-tuned checkpoint in the serving graph, checked against the CLS_POOLED
vectors of the same model through a NumPy softmax; labels.txt; the errors of a checkpoint that is no classifier."""

import contextlib
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bert_serving.client import ConcurrentBertClient
from bert_serving.server.model.checkpoint import ModelFileError, locate_model
from bert_serving.server.model.classifier import read_labels, rerank_label
from bert_serving.server.model.encoder import SentenceEncoder
from bert_serving.server.model.graph import GraphOptions, build_frozen_graph
from bert_serving.server.model.features import FeatureBuilder
from bert_serving.server.model.strategy import PoolingStrategy
from bert_serving.server.model.tokenization import FullTokenizer
from classifiers import old_client_encode, softmax_head, write_classifier
from servers import BIN, ServerProcess, free_port, session_pids, wait_until
from test_compat_oldclient import old_client_python  # noqa: F401 (the fixture: the 1.10.0 client's venv)
from test_http import ProxyProcess, call, metric_values

LABELS = ['negative', 'neutral', 'positive']
TOPIC_LABELS = ['food', 'sports', 'weather']
TRIPLE = 'hello world ||| good day ||| the lazy dog'
TEXTS = ['hello world', 'the quick brown fox jumps over the lazy dog', 'good day ||| first do it right', 'why']


@pytest.fixture(scope='module')
def tuned_dir(tiny_config, tmp_path_factory):
    """A three-label classifier fine-tuned from the tiny model; its head as .head."""
    path = tmp_path_factory.mktemp('tuned')
    head = write_classifier(path, tiny_config, LABELS)
    return path, head


def files_of(model_dir, tuned=None, ckpt_name='model.ckpt-7'):
    return locate_model(model_dir, ckpt_name=ckpt_name if tuned else 'bert_model.ckpt', tuned_model_dir=tuned)


def encoder(files, tmp_path, max_segments=2, **options):
    path = build_frozen_graph(files, GraphOptions(**options), str(tmp_path))
    return SentenceEncoder(path, files.vocab_path, 32, max_segments=max_segments)


# labels.txt and the rerank rule

@pytest.mark.parametrize('content, message', [
    (None, 'labels.txt not found'),
    ('a\n\nb\n', 'labels.txt, line 2: empty label'),
    ('a\nb\na\n', "labels.txt, line 3: label 'a' repeats line 1"),
    ('only\n', 'at least two labels, found 1'),
])
def test_bad_labels_file_names_the_file_and_line(tiny_model_dirs, tiny_config, tmp_path, content, message):
    write_classifier(tmp_path, tiny_config, LABELS, labels_file=False)
    if content is not None:
        (tmp_path / 'labels.txt').write_text(content)
    with pytest.raises(ModelFileError, match=message.replace('(', r'\(')):
        read_labels(files_of(tiny_model_dirs['google'], tmp_path))


def test_labels_keep_the_file_order_and_ignore_trailing_blank_lines(tiny_model_dirs, tiny_config, tmp_path):
    write_classifier(tmp_path, tiny_config, LABELS, labels_file=False)
    (tmp_path / 'labels.txt').write_text('b\na\n\n')
    assert read_labels(files_of(tiny_model_dirs['google'], tmp_path)) == ['b', 'a']


@pytest.mark.parametrize('labels, expected', [
    (['0', '1'], '1'), (['false', 'true'], 'true'), (['no', 'yes'], 'yes'), (['neg', 'pos'], 'pos'),
    (['relevant', 'unrelated'], 'relevant'), (['a', 'b'], 'b'),
    (['contradiction', 'entailment', 'neutral'], 'entailment'), (['x', 'y', 'z'], None), (LABELS, 'positive'),
])
def test_rerank_scores_the_positive_label(labels, expected):
    assert rerank_label(labels) == expected


# the graph

@pytest.mark.slow
def test_probabilities_equal_softmax_of_the_pooled_output(tiny_model_dirs, tuned_dir, tmp_path):
    path, (weights, bias) = tuned_dir
    for layout in ('google', 'hf'):
        files = files_of(tiny_model_dirs[layout], path)
        pooled, _ = encoder(files, tmp_path, pooling_strategy=PoolingStrategy.CLS_POOLED).encode(TEXTS)
        probabilities, _ = encoder(files, tmp_path, task='classify').encode(TEXTS)
        assert probabilities.dtype == np.float32 and probabilities.shape == (len(TEXTS), len(LABELS))
        np.testing.assert_allclose(probabilities, softmax_head(pooled, weights, bias), atol=1e-5)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    pretrained, _ = encoder(files_of(tiny_model_dirs['google']), tmp_path,
                            pooling_strategy=PoolingStrategy.CLS_POOLED).encode(TEXTS)
    assert not np.allclose(pretrained, pooled, atol=1e-3), 'the fine-tuned encoder weights were not used'


@pytest.mark.slow
def test_half_precision_probabilities_stay_close(tiny_model_dirs, tuned_dir, tmp_path):
    files = files_of(tiny_model_dirs['google'], tuned_dir[0])
    full, _ = encoder(files, tmp_path, task='classify').encode(TEXTS)
    half, _ = encoder(files, tmp_path, task='classify', fp16=True).encode(TEXTS)
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, full, atol=1e-2)


@pytest.mark.slow
def test_checkpoint_without_a_head_is_refused(tiny_model_dirs, tiny_config, tmp_path):
    write_classifier(tmp_path, tiny_config, LABELS, head=False)
    with pytest.raises(ModelFileError, match='model.ckpt-7 has no classification head .* serve this one with '
                                             '-task encode'):
        build_frozen_graph(files_of(tiny_model_dirs['google'], tmp_path), GraphOptions(task='classify'))


@pytest.mark.slow
def test_head_of_another_size_than_the_labels_is_refused(tiny_model_dirs, tiny_config, tmp_path):
    write_classifier(tmp_path, tiny_config, LABELS)
    (tmp_path / 'labels.txt').write_text('a\nb\n')
    with pytest.raises(ModelFileError, match=r'output_weights has shape \(3, 32\), expected \(2, 32\).*lists 2 labels'):
        build_frozen_graph(files_of(tiny_model_dirs['google'], tmp_path), GraphOptions(task='classify'))


def test_hugging_face_folder_alone_has_no_head(tiny_model_dirs):
    with pytest.raises(ModelFileError, match='Hugging Face folder without a classification head'):
        read_labels(files_of(tiny_model_dirs['hf']))


# the server

@pytest.fixture(scope='module')
def servers(tiny_model_dirs, tiny_config, tuned_dir, tmp_path_factory):
    """On the same fine-tuned model: a classify server, an encode server (CLS_POOLED), and a classify
    server whose labels name no positive one (a topic classifier), started side by side."""
    logs, topics = tmp_path_factory.mktemp('logs'), tmp_path_factory.mktemp('topics')
    write_classifier(topics, tiny_config, TOPIC_LABELS)
    common = ('-ckpt_name', 'model.ckpt-7', '-max_seq_len', 32)
    # pooling options do not apply to the head: even token-level pooling of a missing layer is ignored
    options = [('-tuned_model_dir', tuned_dir[0], *common, '-task', 'classify', '-max_batch_size', 3,
                '-pooling_strategy', 'NONE', '-pooling_layer', 9),
               ('-tuned_model_dir', tuned_dir[0], *common, '-pooling_strategy', 'CLS_POOLED'),
               ('-tuned_model_dir', topics, *common, '-task', 'classify')]
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(len(options)) as pool:
        started = [pool.submit(ServerProcess, tiny_model_dirs['google'], *each, log_dir=logs) for each in options]
        yield [stack.enter_context(future.result()) for future in started]


@pytest.fixture(scope='module')
def proxies(servers, tmp_path_factory):
    """The HTTP proxy in front of each server."""
    logs = tmp_path_factory.mktemp('http-logs')
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(ProxyProcess.in_front_of(server, log_dir=logs)) for server in servers]


@pytest.mark.slow
def test_server_serves_the_probabilities_of_the_head(servers, tuned_dir):
    classify, encode = servers[:2]
    weights, bias = tuned_dir[1]
    with classify.client() as client, encode.client() as pooled:
        probabilities = client.encode(TEXTS * 2)  # split over two batches by -max_batch_size 3
        assert probabilities.shape == (2 * len(TEXTS), len(LABELS))
        np.testing.assert_allclose(probabilities, softmax_head(pooled.encode(TEXTS * 2), weights, bias), atol=1e-5)
        config = client.server_config
    assert config['task'] == 'classify' and config['labels'] == LABELS and config['rerank_label'] == 'positive'
    assert config['pooling_strategy'] == 'CLS_POOLED'


@pytest.mark.slow
def test_encode_server_says_its_task_and_has_no_labels(servers):
    with servers[1].client() as client:
        config = client.server_config
    assert config['task'] == 'encode' and config['labels'] is None


@pytest.mark.slow
@pytest.mark.parametrize('damage, message', [
    ('no_labels', 'labels.txt not found: -task classify needs the labels'),
    ('no_head', 'has no classification head (output_weights, output_bias)'),
])
def test_start_without_a_head_or_labels_stops_with_one_line(tiny_model_dirs, tiny_config, tmp_path, damage, message):
    write_classifier(tmp_path, tiny_config, LABELS, head=damage != 'no_head', labels_file=damage != 'no_labels')
    start = subprocess.Popen([str(BIN / 'bert-serving-start'), '-model_dir', str(tiny_model_dirs['google']),
                              '-tuned_model_dir', str(tmp_path), '-ckpt_name', 'model.ckpt-7', '-task', 'classify',
                              '-port', str(free_port()), '-port_out', str(free_port()), '-cpu'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _, stderr = start.communicate(timeout=120)
    assert start.returncode == 2, stderr
    errors = [line for line in stderr.splitlines() if 'error' in line.lower()]
    assert len(errors) == 1 and message in errors[0] and 'Traceback' not in stderr, stderr
    # the workers started early for the graph are gone too (a process may take a moment to be reaped)
    assert wait_until(lambda: not session_pids(start.pid), timeout=5), session_pids(start.pid)


@pytest.mark.slow
def test_pypi_client_1_10_gets_the_probabilities_unchanged(old_client_python, servers, tuned_dir, tmp_path):
    with servers[1].client() as pooled:
        expected = softmax_head(pooled.encode(TEXTS), *tuned_dir[1])
    np.testing.assert_allclose(old_client_encode(old_client_python, servers[0], TEXTS, tmp_path), expected, atol=1e-5)


@pytest.mark.slow
def test_client_classify_ranks_the_labels_by_probability(servers, tuned_dir):
    classify, encode = servers[:2]
    with encode.client() as pooled:
        expected = softmax_head(pooled.encode(TEXTS), *tuned_dir[1])
    with classify.client() as client:
        best = client.classify(TEXTS)
        every = client.classify(TEXTS, top_k=None)
        two = client.classify([['hello', 'world']], top_k=2, is_tokenized=True)
    assert [[entry['label'] for entry in row] for row in best] == [[LABELS[i]] for i in expected.argmax(axis=1)]
    for row, probabilities in zip(every, expected):
        assert [entry['label'] for entry in row] == [LABELS[i] for i in np.argsort(-probabilities)]
        np.testing.assert_allclose([entry['score'] for entry in row], np.sort(probabilities)[::-1], atol=1e-5)
    assert len(two) == 1 and len(two[0]) == 2 and two[0][0]['score'] >= two[0][1]['score']


@pytest.mark.slow
def test_pooled_client_classifies_too(servers):
    classify = servers[0]
    with ConcurrentBertClient(max_concurrency=2, port=classify.port, port_out=classify.port_out) as pool, \
            classify.client() as client:
        assert pool.classify(TEXTS, top_k=2) == client.classify(TEXTS, top_k=2)


@pytest.mark.slow
@pytest.mark.parametrize('top_k, error, message', [
    (0, ValueError, 'top_k must be at least 1, got 0'), ('2', TypeError, 'top_k must be an int or None'),
])
def test_client_refuses_a_bad_top_k_before_sending(servers, top_k, error, message):
    with servers[0].client() as client, pytest.raises(error, match=message):
        client.classify(TEXTS, top_k=top_k)


@pytest.mark.slow
def test_client_classify_on_an_encode_server_says_what_to_start(servers):
    with servers[1].client() as client, pytest.raises(ValueError, match="serves task 'encode', not a classifier"):
        client.classify(TEXTS)


# HTTP

@pytest.mark.slow
def test_http_classify_answers_the_ranked_labels(servers, proxies, tuned_dir):
    with servers[1].client() as pooled:
        expected = softmax_head(pooled.encode(TEXTS), *tuned_dir[1])
    reply = call(proxies[0].url + '/classify', {'texts': TEXTS, 'top_k': None})
    assert reply.status == 200, reply.body
    for row, probabilities in zip(reply.json(), expected):
        assert [entry['label'] for entry in row] == [LABELS[i] for i in np.argsort(-probabilities)]
        np.testing.assert_allclose([entry['score'] for entry in row], np.sort(probabilities)[::-1], atol=1e-5)
    best = call(proxies[0].url + '/classify', {'texts': TEXTS}).json()
    assert [[entry['label'] for entry in row] for row in best] == [[LABELS[i]] for i in expected.argmax(axis=1)]
    encoded = call(proxies[0].url + '/encode', {'id': 5, 'texts': TEXTS}).json()
    np.testing.assert_allclose(encoded['result'], expected, atol=1e-5)


@pytest.mark.slow
def test_http_rerank_sorts_texts_by_the_positive_probability(servers, proxies, tuned_dir):
    query, texts = 'good day', ['hello world', 'the lazy dog', 'first do it right', 'why']
    with servers[1].client() as pooled:
        pairs = softmax_head(pooled.encode([f'{query} ||| {text}' for text in texts]), *tuned_dir[1])
    scores = pairs[:, LABELS.index('positive')]
    reply = call(proxies[0].url + '/rerank', {'query': query, 'texts': texts})
    assert reply.status == 200, reply.body
    ranked = reply.json()
    assert [entry['index'] for entry in ranked] == list(np.argsort(-scores))
    np.testing.assert_allclose([entry['score'] for entry in ranked], np.sort(scores)[::-1], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize('which, path, body, message', [
    (0, '/classify', {'top_k': 1}, 'missing "texts"'),
    (0, '/classify', {'texts': ['a'], 'top_k': 0}, '"top_k": top_k must be at least 1'),
    (0, '/classify', {'texts': ['ok', ' ']}, 'texts[1] is empty'),
    (0, '/rerank', {'texts': ['a']}, '"query" must be a non-empty string'),
    (0, '/rerank', {'query': 'q', 'texts': []}, '"texts" must be a non-empty list'),
    (0, '/rerank', {'query': 'q', 'texts': ['a ||| b']}, 'texts[0] holds " ||| "'),
    (0, '/rerank', {'query': 'q ||| r', 'texts': ['a']}, 'the query holds " ||| "'),
    (0, '/v1/embeddings', {'input': ['a']}, 'this server serves a classifier (-task classify)'),
    (1, '/classify', {'texts': ['a']}, "serves task 'encode', not a classifier"),
    (1, '/rerank', {'query': 'q', 'texts': ['a']}, "serves task 'encode', not a classifier"),
    (2, '/rerank', {'query': 'q', 'texts': ['a']}, "labels ['food', 'sports', 'weather'] name no positive label"),
])
def test_http_bad_requests_get_a_400_that_says_why(proxies, which, path, body, message):
    reply = call(proxies[which].url + path, body)
    assert reply.status == 400 and message in reply.json()['error'], reply.body


@pytest.mark.slow
def test_openapi_and_metrics_cover_classify_and_rerank(proxies):
    url = proxies[0].url
    paths = call(url + '/openapi.json').json()['paths']
    assert {'/classify', '/rerank'} <= set(paths) and 'requestBody' in paths['/rerank']['post']
    before = metric_values(url)
    assert call(url + '/classify', {'texts': TEXTS}).status == 200
    assert call(url + '/rerank', {'query': 'q', 'texts': TEXTS[:2]}).status == 200
    after = metric_values(url)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    for endpoint in ('/classify', '/rerank'):
        assert grew('bert_http_requests_total', endpoint=endpoint, method='POST', status='200') == 1
    assert grew('bert_http_sentences_total') == len(TEXTS) + 2
    assert sum(grew('bert_http_predictions_total', label=label) for label in LABELS) == len(TEXTS)


# three segments: a ||| b ||| c as bert-serving-finetune encodes text_a, text_b, text_c

def test_a_classifier_reads_three_segments_as_fine_tuning_does(tiny_model_dirs):
    tokenizer = FullTokenizer(files_of(tiny_model_dirs['google']).vocab_path)
    three, two = FeatureBuilder(tokenizer, 16, max_segments=3), FeatureBuilder(tokenizer, 16)
    expected = three.build_segments([('hello world', 'good day', 'the lazy dog')])
    got = three.build([TRIPLE])
    assert got.tokens == expected.tokens and got.tokens[0].count('[SEP]') == 3
    np.testing.assert_array_equal(got.input_type_ids, expected.input_type_ids)
    assert two.build([TRIPLE]).tokens[0].count('[SEP]') == 2  # 1.10's pair, split at the last separator


@pytest.mark.slow
def test_classify_server_serves_three_segments(servers, tiny_model_dirs, tuned_dir, tmp_path):
    files = files_of(tiny_model_dirs['google'], tuned_dir[0])
    pooled, _ = encoder(files, tmp_path, max_segments=3, pooling_strategy=PoolingStrategy.CLS_POOLED).encode([TRIPLE])
    with servers[0].client() as client:
        np.testing.assert_allclose(client.encode([TRIPLE]), softmax_head(pooled, *tuned_dir[1]), atol=1e-5)
