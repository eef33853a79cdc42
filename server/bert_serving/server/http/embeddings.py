"""The OpenAI embeddings API: ``POST /v1/embeddings``."""
import base64

from flask import Blueprint, jsonify

from .bodies import read_body
from .errors import ApiError
from .openapi import error_replies, json_body, reply
from .proxy import current_proxy

blueprint = Blueprint('embeddings', __name__)


@blueprint.post('/v1/embeddings')
def embeddings():
    proxy = current_proxy()
    body = read_body(proxy.config.max_body_bytes)
    texts = embedding_inputs(body)
    if proxy.server.info()['task'] == 'classify':
        raise ApiError(400, 'this server serves a classifier (-task classify): it answers class probabilities, '
                            'not embeddings; use POST /classify, or start an encode server for embeddings',
                       'not_an_encoder')
    encoding_format = body.get('encoding_format') or 'float'
    if encoding_format not in ('float', 'base64'):
        raise ApiError(400, f'"encoding_format" must be "float" or "base64", got {encoding_format!r}',
                       'bad_request')
    model = body.get('model') or proxy.server.info()['model']
    if not isinstance(model, str):
        raise ApiError(400, f'"model" must be a string, got {type(model).__name__}', 'bad_request')
    vectors, num_tokens = proxy.encode(texts)
    if encoding_format == 'base64':
        rows = [base64.b64encode(row.astype('<f4').tobytes()).decode('ascii') for row in vectors]
    else:
        rows = list(vectors)  # each row is written by the JSON provider from its float32 buffer
    return jsonify(object='list', model=model,
                   data=[{'object': 'embedding', 'index': i, 'embedding': row} for i, row in enumerate(rows)],
                   usage={'prompt_tokens': num_tokens, 'total_tokens': num_tokens})


def embedding_inputs(body: dict) -> list:
    """The ``input`` of an embeddings request as a list of str."""
    if 'input' not in body:
        raise ApiError(400, 'missing "input": send {"input": "some text"} or {"input": ["one", "two"]}',
                       'bad_request')
    texts = body['input']
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list):
        raise ApiError(400, f'"input" must be a string or a list of strings, got {type(texts).__name__}',
                       'bad_request')
    if not texts:
        raise ApiError(400, '"input" is an empty list: there is nothing to embed', 'bad_request')
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            hint = ' (token-id input is not supported: send text)' if isinstance(text, (int, list)) else ''
            raise ApiError(400, f'input[{index}] is {type(text).__name__}, expected a string{hint}', 'bad_request')
        if not text.strip():
            raise ApiError(400, f'input[{index}] is empty or only whitespace', 'bad_request')
    return texts


EMBEDDINGS_REQUEST = {
    'type': 'object', 'required': ['input'],
    'properties': {'input': {'oneOf': [{'type': 'string'},
                                       {'type': 'array', 'minItems': 1, 'items': {'type': 'string'}}]},
                   'model': {'type': 'string', 'description': 'echoed back; defaults to the model folder name'},
                   'encoding_format': {'type': 'string', 'enum': ['float', 'base64'], 'default': 'float',
                                       'description': 'base64 = little-endian float32 bytes of each vector'}}}
EMBEDDINGS_REPLY = {
    'type': 'object', 'properties': {
        'object': {'const': 'list'}, 'model': {'type': 'string'},
        'data': {'type': 'array', 'items': {'type': 'object', 'properties': {
            'object': {'const': 'embedding'}, 'index': {'type': 'integer'},
            'embedding': {'oneOf': [{'type': 'array', 'items': {'type': 'number'}}, {'type': 'string'}]}}}},
        'usage': {'type': 'object', 'properties': {'prompt_tokens': {'type': 'integer'},
                                                   'total_tokens': {'type': 'integer'}},
                  'description': 'tokens of the server tokenization when it sends them '
                                 '(-show_tokens_to_client), else whitespace-separated words'}}}


def openapi_paths() -> dict:
    """The OpenAPI paths of this blueprint."""
    return {'/v1/embeddings': {'post': {
        'summary': 'Embed text in the shape of the OpenAI embeddings API',
        'requestBody': json_body(EMBEDDINGS_REQUEST),
        'responses': {'200': reply('one embedding per input', EMBEDDINGS_REPLY), **error_replies()}}}}
