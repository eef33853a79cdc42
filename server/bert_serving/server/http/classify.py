"""The classifier API of a ``-task classify`` server: ``POST /classify`` and ``POST /rerank``.

``/classify`` {"texts": [...], "top_k": 1} -> per text, its best ``{"label", "score"}``, best first (the
shape of text-embeddings-inference's ``/predict``). ``/rerank`` {"query": q, "texts": [...]} scores each
``q ||| text`` pair by the probability of the server's ``rerank_label`` (see
``bert_serving.server.model.classifier.rerank_label``) -> ``[{"index", "score"}]``, best first.
"""
from flask import Blueprint, jsonify

from bert_serving.client.classification import check_top_k, classifier_labels, top_labels

from .bodies import read_body, read_texts_body
from .errors import ApiError
from .openapi import error_replies, json_body, reply
from .proxy import current_proxy

blueprint = Blueprint('classify', __name__)
PAIR_SEPARATOR = ' ||| '  # how the server reads a pair of sentences


def server_labels() -> list:
    """The labels of the classifier behind the proxy; 400 when the server serves no classifier."""
    proxy = current_proxy()
    try:
        return classifier_labels(proxy.server.info(), f'{proxy.config.server_ip}:{proxy.config.port}')
    except ValueError as error:
        raise ApiError(400, str(error), 'not_a_classifier') from None


@blueprint.post('/classify')
def classify():
    proxy = current_proxy()
    body = read_texts_body(proxy.config.max_body_bytes, '{"texts": ["first sentence", "second one"], "top_k": 1}')
    top_k = body.get('top_k', 1)
    try:
        check_top_k(top_k)
    except (TypeError, ValueError) as error:
        raise ApiError(400, f'"top_k": {error}', 'bad_request') from None
    labels = server_labels()
    probabilities, _ = proxy.encode(body['texts'])
    ranked = top_labels(probabilities, labels, top_k)
    for best, *_ in ranked:
        proxy.metrics.predictions.labels(best['label']).inc()
    return jsonify(ranked)


@blueprint.post('/rerank')
def rerank():
    proxy = current_proxy()
    body = read_body(proxy.config.max_body_bytes)
    query, texts = rerank_inputs(body)
    labels = server_labels()
    positive = proxy.server.info().get('rerank_label')
    if positive not in labels:
        raise ApiError(400, f'the classifier\'s labels {labels} name no positive label, so /rerank cannot score '
                            f'pairs: it needs a pair classifier with two labels, or with exactly one label '
                            f'named 1, true, yes, relevant or positive', 'not_a_pair_classifier')
    probabilities, _ = proxy.encode([f'{query}{PAIR_SEPARATOR}{text}' for text in texts])
    scores = probabilities[:, labels.index(positive)]
    order = sorted(range(len(texts)), key=lambda index: -scores[index])
    return jsonify([{'index': index, 'score': float(scores[index])} for index in order])


def rerank_inputs(body: dict) -> tuple[str, list]:
    """The query and texts of a rerank request, checked."""
    query, texts = body.get('query'), body.get('texts')
    if not isinstance(query, str) or not query.strip():
        raise ApiError(400, '"query" must be a non-empty string: send {"query": "q", "texts": ["a", "b"]}',
                       'bad_request')
    if PAIR_SEPARATOR in query:
        raise ApiError(400, 'the query holds " ||| ", which the server reads as a separator of segments',
                       'bad_request')
    if not isinstance(texts, list) or not texts:
        raise ApiError(400, '"texts" must be a non-empty list of strings: send {"query": "q", "texts": ["a"]}',
                       'bad_request')
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, f'texts[{index}] must be a non-empty string', 'bad_request')
        if PAIR_SEPARATOR in text:
            raise ApiError(400, f'texts[{index}] holds " ||| ", which the server reads as the separator of '
                                f'the query and the text', 'bad_request')
    return query, texts


TEXTS = {'type': 'array', 'minItems': 1, 'items': {'type': 'string'}}
CLASSIFY_REQUEST = {
    'type': 'object', 'required': ['texts'],
    'properties': {'texts': dict(TEXTS, description='sentences; a pair is written "first ||| second"'),
                   'top_k': {'type': 'integer', 'minimum': 1, 'default': 1, 'nullable': True,
                             'description': 'labels per text, best first; null for every label'}}}
CLASSIFY_REPLY = {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'object', 'properties': {
    'label': {'type': 'string'}, 'score': {'type': 'number'}}}}}
RERANK_REQUEST = {'type': 'object', 'required': ['query', 'texts'],
                  'properties': {'query': {'type': 'string'}, 'texts': TEXTS}}
RERANK_REPLY = {'type': 'array', 'items': {'type': 'object', 'properties': {
    'index': {'type': 'integer', 'description': 'position in "texts"'},
    'score': {'type': 'number', 'description': 'probability of the positive label for (query, text)'}}}}


def openapi_paths() -> dict:
    """The OpenAPI paths of this blueprint."""
    return {
        '/classify': {'post': {
            'summary': 'Classify texts (a -task classify server)', 'requestBody': json_body(CLASSIFY_REQUEST),
            'responses': {'200': reply('per text, its best labels, best first', CLASSIFY_REPLY),
                          **error_replies()}}},
        '/rerank': {'post': {
            'summary': 'Rank texts by relevance to a query (a -task classify server trained on pairs)',
            'requestBody': json_body(RERANK_REQUEST),
            'responses': {'200': reply('the texts, most relevant first', RERANK_REPLY), **error_replies()}}},
    }
