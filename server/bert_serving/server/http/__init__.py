"""HTTP proxy of bert-serving: a Flask app, served by granian, that forwards to the ZeroMQ server
through a pool of ``http_max_connect`` clients. Needs ``pip install bert-serving-server[http]``.

- ``POST /encode`` (1.10.0): JSON ``{"id": 1, "texts": [...], "is_tokenized": false}``, or a form with
  repeated ``texts`` fields (or one ``texts`` field holding a JSON list) -> ``{"id", "result", "status"}``.
- ``GET /status/server``, ``GET /status/client`` (1.10.0): the server's status, a pooled client's.
- ``POST /v1/embeddings``: the OpenAI embeddings shape. ``usage.prompt_tokens`` counts the server's
  WordPiece tokens ([CLS] and [SEP] included, after truncation) when the server runs with
  ``-show_tokens_to_client``, else whitespace-separated words.
- ``POST /classify``, ``POST /rerank``: a ``-task classify`` server's labels of texts, and texts ranked by
  relevance to a query (a pair classifier); ``/encode`` answers its probabilities, ``/v1/embeddings`` 400.
- ``GET /health`` (the proxy is up), ``GET /ready`` (503 until every worker has loaded the model),
  ``GET /metrics`` (Prometheus), ``GET /openapi.json``.

Every error is JSON ``{"status": code, "error": message}``: 4xx for bad requests, 401 without the bearer
token (when one is set; /health and /ready stay open), 413 over ``max_body_bytes``, 503/504 when the
server is busy or does not answer within ``request_timeout_ms``. Run it alone, in front of a running
server, with ``python -m bert_serving.server.http -http_port 8125 -port 5555 -port_out 5556``.

The package, one module per role: ``config`` (HttpConfig), ``pool`` (the pooled ZeroMQ clients),
``proxy`` (the state the blueprints share), ``app`` (the app factory and the list of API blueprints),
``errors``, ``bodies`` (request parsing), ``metrics``, ``openapi``, ``cli`` (the standalone proxy), and one
blueprint module per API:
``legacy`` (1.10's ``/encode`` and ``/status/...``), ``embeddings`` (``/v1/embeddings``), ``classify``
(``/classify``, ``/rerank``), ``operations``
(``/health``, ``/ready``, ``/metrics``, ``/openapi.json``). To add an API, write a module with a ``blueprint`` and an
``openapi_paths()`` and add it to ``app.APIS``.
"""

try:
    import flask  # noqa: F401
    import flask_compress  # noqa: F401
    import flask_cors  # noqa: F401
    import numpy  # noqa: F401
    import orjson  # noqa: F401
    import prometheus_client  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(f'the HTTP proxy needs Flask and its friends ({error}); '
                      f'install them with: pip install "bert-serving-server[http]"') from error

from .app import APIS, create_app
from .cli import check_port_is_free, main, run_http_proxy
from .config import HttpConfig
from .errors import ApiError
from .openapi import openapi_document

__all__ = ['APIS', 'ApiError', 'HttpConfig', 'check_port_is_free', 'create_app', 'main', 'openapi_document',
           'run_http_proxy']
