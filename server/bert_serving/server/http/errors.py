"""The proxy's errors: every one is answered as JSON ``{"status": code, "error": message}``."""
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .proxy import current_proxy


class ApiError(Exception):
    """An error answered as ``{"status": status, "error": message}``; ``kind`` labels it in the metrics."""

    def __init__(self, status: int, message: str, kind: str):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def error_response(status: int, message: str, kind: str):
    """The JSON answer of an error, counted in the metrics by ``kind``."""
    current_proxy().metrics.errors.labels(kind).inc()
    response = jsonify(status=status, error=message)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer ApiError, Werkzeug's HTTP errors and anything unexpected in JSON."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        current_proxy().logger.info('%s %s -> %d: %s', request.method, request.path, error.status, error.message)
        return error_response(error.status, error.message, error.kind)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        message = error.description
        if isinstance(error, RequestEntityTooLarge):
            message = f'the request body is larger than the limit of {current_proxy().config.max_body_bytes} bytes'
        return error_response(error.code, message, error.name.lower().replace(' ', '_'))

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        current_proxy().logger.exception('unexpected error on %s %s', request.method, request.path)
        return error_response(500, f'internal error ({type(error).__name__}); see the server log', 'internal')
