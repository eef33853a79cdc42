"""The OpenAPI 3 document of the proxy, put together from the ``openapi_paths()`` of every API module,
and the helpers those modules describe their paths with."""
from ..version import __version__
from .config import OPEN_ENDPOINTS, HttpConfig

ERROR = {'$ref': '#/components/schemas/Error'}


def json_body(schema: dict) -> dict:
    """A required JSON request body of ``schema``."""
    return {'required': True, 'content': {'application/json': {'schema': schema}}}


def reply(description: str, schema: dict | None = None, media: str = 'application/json') -> dict:
    """A response of ``media`` type holding ``schema`` (any object by default)."""
    return {'description': description, 'content': {media: {'schema': schema or {'type': 'object'}}}}


def error_replies() -> dict:
    """The error responses every endpoint that asks the server can give."""
    return {str(code): reply(text, ERROR) for code, text in (
        (400, 'malformed request'), (401, 'missing or wrong bearer token'), (413, 'body too large'),
        (502, 'the server failed the request'), (503, 'the server is busy'),
        (504, 'the server did not answer in time'))}


def get(summary: str, description: str, responses: dict | None = None) -> dict:
    """A GET operation answering 200 with an object."""
    return {'get': {'summary': summary, 'responses': {'200': reply(description), **(responses or {})}}}


def openapi_document(config: HttpConfig) -> dict:
    """The OpenAPI 3 description of every endpoint."""
    from .app import APIS  # the API modules import the helpers above

    paths = {}
    for api in APIS:
        paths.update(api.openapi_paths())
    document = {
        'openapi': '3.0.3',
        'info': {'title': 'bert-serving HTTP API', 'version': __version__,
                 'description': 'Sentence embeddings from a bert-serving server. Errors are '
                                '{"status": code, "error": message}.'},
        'paths': paths,
        'components': {'schemas': {'Error': {'type': 'object', 'properties': {
            'status': {'type': 'integer'}, 'error': {'type': 'string'}}}}},
    }
    if config.auth_token:
        document['components']['securitySchemes'] = {'bearer': {'type': 'http', 'scheme': 'bearer'}}
        document['security'] = [{'bearer': []}]
        for path in OPEN_ENDPOINTS:
            paths[path]['get']['security'] = []
    return document
