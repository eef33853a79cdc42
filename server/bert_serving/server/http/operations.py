"""Operations: ``GET /health``, ``GET /ready``, ``GET /metrics`` (Prometheus), ``GET /openapi.json``."""
from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..version import __version__
from .errors import ApiError, error_response
from .openapi import ERROR, get, openapi_document, reply
from .proxy import current_proxy

blueprint = Blueprint('operations', __name__)


@blueprint.get('/health')
def health():
    return jsonify(status=200, alive=True, version=__version__)


@blueprint.get('/ready')
def ready():
    try:
        status = current_proxy().server.status()
    except ApiError as error:
        return error_response(503, f'not ready: {error.message}', 'not_ready')
    num_ready = status.get('statistic', {}).get('num_ready_worker', 0)
    num_worker = status.get('num_worker', 1)
    if num_ready < num_worker:
        return error_response(503, f'not ready: {num_ready} of {num_worker} workers have loaded the model',
                              'not_ready')
    return jsonify(status=200, ready=True, num_ready_worker=num_ready, num_worker=num_worker)


@blueprint.get('/metrics')
def prometheus_metrics():
    return Response(generate_latest(current_proxy().metrics.registry), content_type=CONTENT_TYPE_LATEST)


@blueprint.get('/openapi.json')
def openapi():
    return jsonify(openapi_document(current_proxy().config))


def openapi_paths() -> dict:
    """The OpenAPI paths of this blueprint."""
    return {
        '/health': get('Whether the proxy process is up', 'alive'),
        '/ready': get('Whether every worker has loaded the model', 'ready', {'503': reply('not ready', ERROR)}),
        '/metrics': {'get': {'summary': 'Prometheus metrics of the proxy and the server', 'responses': {
            '200': reply('Prometheus text format', {'type': 'string'}, 'text/plain')}}},
        '/openapi.json': get('This document', 'OpenAPI 3 document'),
    }
