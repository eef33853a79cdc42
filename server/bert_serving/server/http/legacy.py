"""The API of bert-as-service 1.10: ``POST /encode``, ``GET /status/server``, ``GET /status/client``."""
from flask import Blueprint, jsonify

from .bodies import read_texts_body
from .errors import ApiError
from .openapi import error_replies, get, reply
from .proxy import current_proxy

blueprint = Blueprint('legacy', __name__)


@blueprint.post('/encode')
def encode_texts():
    proxy = current_proxy()
    body = read_texts_body(proxy.config.max_body_bytes, '{"id": 1, "texts": ["first sentence", "second one"]}')
    request_id, is_tokenized = body.get('id'), body.get('is_tokenized', False)
    if not isinstance(request_id, (int, float, str, type(None))) or isinstance(request_id, bool):
        raise ApiError(400, f'"id" must be a number or a string, got {type(request_id).__name__}', 'bad_request')
    if not isinstance(is_tokenized, bool):
        raise ApiError(400, f'"is_tokenized" must be true or false, got {is_tokenized!r}', 'bad_request')
    embeddings, _ = proxy.encode(body['texts'], is_tokenized)
    return jsonify(id=request_id, result=embeddings, status=200)


@blueprint.get('/status/server')
def status_server():
    return jsonify(current_proxy().server.status())


@blueprint.get('/status/client')
def status_client():
    return jsonify(current_proxy().server.client_status())


ENCODE_REQUEST = {
    'type': 'object', 'required': ['texts'],
    'properties': {'id': {'oneOf': [{'type': 'integer'}, {'type': 'string'}], 'description': 'echoed back'},
                   'texts': {'type': 'array', 'minItems': 1,
                             'items': {'oneOf': [{'type': 'string'},
                                                 {'type': 'array', 'items': {'type': 'string'}}]},
                             'description': 'sentences, or token lists when is_tokenized'},
                   'is_tokenized': {'type': 'boolean', 'default': False}}}
FORM_REQUEST = {'type': 'object', 'properties': {
    'id': {'type': 'string'}, 'is_tokenized': {'type': 'string', 'enum': ['true', 'false']},
    'texts': {'type': 'array', 'items': {'type': 'string'},
              'description': 'repeated field, or one field holding a JSON list'}}}
ENCODE_REPLY = {'type': 'object', 'properties': {
    'id': {}, 'status': {'const': 200}, 'result': {'type': 'array', 'items': {'type': 'array'}}}}


def openapi_paths() -> dict:
    """The OpenAPI paths of this blueprint."""
    return {
        '/encode': {'post': {
            'summary': 'Encode sentences (the bert-as-service 1.10 API)',
            'requestBody': {'required': True, 'content': {
                'application/json': {'schema': ENCODE_REQUEST},
                'application/x-www-form-urlencoded': {'schema': FORM_REQUEST}}},
            'responses': {'200': reply('one vector per sentence, in order', ENCODE_REPLY), **error_replies()}}},
        '/status/server': get('The server configuration and statistics', 'SHOW_STATUS of the server'),
        '/status/client': get('State of a pooled client of the proxy', 'client status'),
    }
