"""HTTP proxy of bert-serving: a Flask app, served by waitress, that forwards to the ZeroMQ server
through a pool of ``http_max_connect`` clients. Needs ``pip install bert-serving-server[http]``.

- ``POST /encode`` (1.10.0): JSON ``{"id": 1, "texts": [...], "is_tokenized": false}``, or a form with
  repeated ``texts`` fields (or one ``texts`` field holding a JSON list) -> ``{"id", "result", "status"}``.
- ``GET /status/server``, ``GET /status/client`` (1.10.0): the server's status, a pooled client's.
- ``POST /v1/embeddings``: the OpenAI embeddings shape. ``usage.prompt_tokens`` counts the server's
  WordPiece tokens ([CLS] and [SEP] included, after truncation) when the server runs with
  ``-show_tokens_to_client``, else whitespace-separated words.
- ``GET /health`` (the proxy is up), ``GET /ready`` (503 until every worker has loaded the model),
  ``GET /metrics`` (Prometheus), ``GET /openapi.json``.

Every error is JSON ``{"status": code, "error": message}``: 4xx for bad requests, 401 without the bearer
token (when one is set; /health and /ready stay open), 413 over ``max_body_bytes``, 503/504 when the
server is busy or does not answer within ``request_timeout_ms``. Run it alone, in front of a running
server, with ``python -m bert_serving.server.http -http_port 8125 -port 5555 -port_out 5556``.
"""

import argparse
import base64
import contextlib
import hmac
import json
import os
import threading
import time
from dataclasses import dataclass

try:
    import numpy as np
    from flask import Flask, Response, g, jsonify, request
    from flask.json.provider import DefaultJSONProvider
    from flask_compress import Compress
    from flask_cors import CORS
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(f'the HTTP proxy needs Flask and its friends ({error}); '
                      f'install them with: pip install "bert-serving-server[http]"') from error

from bert_serving.client import ConcurrentBertClient, ServerError

from .logger import set_logger
from .version import __version__

FORM_TYPES = ('application/x-www-form-urlencoded', 'multipart/form-data')
# Load balancers and orchestrators probe these without credentials.
OPEN_ENDPOINTS = ('/health', '/ready')
LATENCY_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class HttpConfig:
    """Settings of the HTTP proxy; ``from_args`` builds it from the parsed ``bert-serving-start`` options."""
    http_port: int
    port: int = 5555
    port_out: int = 5556
    server_ip: str = 'localhost'       # where the ZeroMQ server listens
    bind: str = '0.0.0.0'              # interface the HTTP server listens on
    http_max_connect: int = 10         # pooled clients, i.e. encodes in flight at once
    cors: str = '*'                    # Access-Control-Allow-Origin: *, one origin, or a comma-separated list
    max_body_bytes: int = 10 * 1024 * 1024
    auth_token: str | None = None      # when set, requests need "Authorization: Bearer <token>"
    request_timeout_ms: int = 60_000   # longest wait for the server before answering 504
    verbose: bool = False
    parent_pid: int | None = None      # exit once this process is gone
    server_public_key: str | None = None   # with client_secret_key: a CurveZMQ server (BertClient's options)
    client_secret_key: str | None = None

    @classmethod
    def from_args(cls, args, parent_pid: int | None = None, server_public_key: str | None = None,
                  client_secret_key: str | None = None) -> 'HttpConfig':
        """Config from the options of ``bert-serving-start``: the proxy listens where the server does."""
        bind = getattr(args, 'bind', '*')
        every_interface = bind in ('*', '0.0.0.0')
        optional = {name: getattr(args, name) for name in ('max_body_bytes', 'auth_token', 'request_timeout_ms')
                    if getattr(args, name, None) is not None}
        return cls(http_port=args.http_port, port=args.port, port_out=args.port_out,
                   server_ip='localhost' if every_interface else bind, bind='0.0.0.0' if every_interface else bind,
                   http_max_connect=args.http_max_connect, cors=args.cors, verbose=args.verbose,
                   parent_pid=parent_pid, server_public_key=server_public_key,
                   client_secret_key=client_secret_key, **optional)

    @property
    def cors_origins(self):
        return '*' if self.cors.strip() == '*' else [origin.strip() for origin in self.cors.split(',')]


class ApiError(Exception):
    """An error answered as ``{"status": status, "error": message}``; ``kind`` labels it in the metrics."""

    def __init__(self, status: int, message: str, kind: str):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class _JSONProvider(DefaultJSONProvider):
    """Flask JSON that also writes what status dicts hold: bytes, sets and numpy values."""

    @staticmethod
    def default(value):
        if isinstance(value, bytes):
            return value.decode('utf-8', 'replace')
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        if isinstance(value, np.generic):
            return value.item()
        return DefaultJSONProvider.default(value)


# ---- request bodies -----------------------------------------------------------------------

def _read_body(max_body_bytes: int) -> dict:
    """The body as a dict, from JSON or from a form (``curl -d '{...}'`` sends JSON as a form, so accept that)."""
    if request.content_length is not None and request.content_length > max_body_bytes:
        raise RequestEntityTooLarge()
    raw = request.get_data()
    if request.mimetype in FORM_TYPES and not raw.lstrip().startswith(b'{'):
        return _form_body(request.form)
    if not raw.strip():
        raise ApiError(400, 'the request body is empty; send JSON such as {"texts": ["hello world"]}', 'bad_request')
    try:
        body = json.loads(raw)
    except ValueError as error:  # UnicodeDecodeError is a ValueError too
        raise ApiError(400, f'the request body is not valid JSON: {error}', 'bad_json') from None
    if not isinstance(body, dict):
        raise ApiError(400, f'the JSON body must be an object, got {type(body).__name__}', 'bad_request')
    return body


def _form_body(form) -> dict:
    """A form as a JSON-like body: repeated ``texts`` fields, or one ``texts`` field holding a JSON list."""
    body = {key: form[key] for key in ('id', 'is_tokenized', 'input', 'model', 'encoding_format') if key in form}
    if 'texts' in form:
        texts = form.getlist('texts')
        if len(texts) == 1 and texts[0].lstrip().startswith('['):
            with contextlib.suppress(ValueError):
                texts = json.loads(texts[0])
        body['texts'] = texts
    if 'is_tokenized' in body:
        flag = body['is_tokenized'].strip().lower()
        if flag not in ('true', 'false', '1', '0', 'yes', 'no', 'on', 'off', ''):
            raise ApiError(400, f'is_tokenized must be true or false, got {body["is_tokenized"]!r}', 'bad_request')
        body['is_tokenized'] = flag in ('true', '1', 'yes', 'on')
    return body


def _embedding_inputs(body: dict) -> list:
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


# ---- the app ------------------------------------------------------------------------------

class _Metrics:
    """The proxy's own Prometheus registry: HTTP counters plus gauges read from the server's status."""

    def __init__(self, server_status):
        self.registry = CollectorRegistry()
        self.requests = Counter('bert_http_requests', 'HTTP requests answered, by endpoint and status',
                                ['endpoint', 'method', 'status'], registry=self.registry)
        self.latency = Histogram('bert_http_request_duration_seconds', 'Time to answer an HTTP request',
                                 ['endpoint'], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter('bert_http_errors', 'HTTP requests answered with an error, by kind', ['kind'],
                              registry=self.registry)
        self.sentences = Counter('bert_http_sentences', 'Sentences encoded through the proxy',
                                 registry=self.registry)
        self.tokens = Counter('bert_http_tokens', 'Tokens encoded (source: server tokenization or whitespace)',
                              ['source'], registry=self.registry)
        self.registry.register(_ServerCollector(server_status))


class _ServerCollector:
    """Reads the server's SHOW_STATUS at each scrape; ``bert_server_up`` is 0 when it does not answer."""

    COUNTERS = {'num_data_request': 'data_requests', 'num_total_seq': 'sequences', 'num_forward_pass': 'forward_passes',
                'num_bad_request': 'bad_requests', 'num_error_reply': 'error_replies',
                'num_published_result': 'published_results', 'num_worker_restart': 'worker_restarts',
                'num_busy_reply': 'busy_replies'}
    GAUGES = {'num_queued_row': 'queued_rows', 'num_pending_job': 'pending_jobs',
              'num_ready_worker': 'ready_workers', 'num_active_client': 'active_clients',
              'avg_rows_per_forward_pass': 'rows_per_forward_pass_avg',
              'max_rows_per_forward_pass': 'rows_per_forward_pass_max',
              'avg_size_per_request': 'request_size_avg'}

    def __init__(self, server_status):
        self.server_status = server_status

    def describe(self):
        return []  # the names depend on what the server reports

    def collect(self):
        try:
            status = self.server_status()
        except ApiError:
            yield GaugeMetricFamily('bert_server_up', 'Whether the server answered the status request', 0)
            return
        yield GaugeMetricFamily('bert_server_up', 'Whether the server answered the status request', 1)
        yield GaugeMetricFamily('bert_server_workers', 'Worker processes configured', status.get('num_worker', 0))
        stats = status.get('statistic', {})
        for key, name in self.COUNTERS.items():
            if key in stats:
                yield CounterMetricFamily(f'bert_server_{name}', f'Server statistic {key}', stats[key])
        for key, name in self.GAUGES.items():
            if key in stats:
                yield GaugeMetricFamily(f'bert_server_{name}', f'Server statistic {key}', stats[key])
        yield from self._per_worker(stats.get('workers', []))

    @staticmethod
    def _per_worker(workers):
        """Forward passes, rows, readiness and batches in flight of each worker, labelled by its id."""
        families = [CounterMetricFamily('bert_server_worker_forward_passes', 'Forward passes given to the worker',
                                        labels=['worker']),
                    CounterMetricFamily('bert_server_worker_rows', 'Sentences given to the worker', labels=['worker']),
                    GaugeMetricFamily('bert_server_worker_ready', 'Whether the worker is loaded', labels=['worker']),
                    GaugeMetricFamily('bert_server_worker_in_flight', 'Batches the worker holds', labels=['worker'])]
        for worker in workers:
            label = [str(worker['id'])]
            for family, key in zip(families, ('forward_passes', 'rows', 'ready', 'in_flight')):
                family.add_metric(label, float(worker[key]))
        return families


def create_app(config: HttpConfig, client_pool) -> Flask:
    """The Flask app of the proxy; ``client_pool`` is a ConcurrentBertClient (encode, server_status, ...)."""
    logger = set_logger('HTTP', config.verbose)
    app = Flask(__name__)
    app.json = _JSONProvider(app)
    app.config.update(MAX_CONTENT_LENGTH=config.max_body_bytes, COMPRESS_ALGORITHM=['gzip', 'deflate'])
    CORS(app, origins=config.cors_origins, send_wildcard=config.cors_origins == '*')
    Compress(app)
    server_info = {}  # facts of the server config learnt once: whether it sends tokens, the model name

    @contextlib.contextmanager
    def asking_server():
        """Turn the client's failures into the HTTP errors a caller can act on."""
        try:
            yield
        except TimeoutError:
            raise ApiError(504, f'the bert-serving server at {config.server_ip}:{config.port} did not answer '
                                f'within {config.request_timeout_ms} ms', 'timeout') from None
        except ServerError as error:
            if error.error_type == 'BadRequest':
                raise ApiError(400, f'the server rejected the request: {error}', 'bad_request') from None
            status, kind = (503, 'server_busy') if error.error_type == 'ServerBusy' else (502, 'server_error')
            raise ApiError(status, f'the server failed the request ({error.error_type}): {error}', kind) from None

    def server_status() -> dict:
        with asking_server():
            return client_pool.server_status

    def learn_server() -> dict:
        if not server_info:
            with asking_server():
                server_config = client_pool.server_config
            server_info.update(shows_tokens=bool(server_config.get('show_tokens_to_client')),
                               model=os.path.basename(os.path.normpath(server_config.get('model_dir') or 'bert')))
        return server_info

    metrics = _Metrics(server_status)

    def encode(texts, is_tokenized=False):
        """(embeddings as float32 ndarray, number of tokens) for valid texts."""
        shows_tokens = learn_server()['shows_tokens']
        try:
            with asking_server():
                result = client_pool.encode(texts, is_tokenized=is_tokenized, show_tokens=shows_tokens)
        except (TypeError, ValueError) as error:  # the client checks texts before sending
            raise ApiError(400, str(error), 'bad_request') from None
        if shows_tokens and isinstance(result, tuple):
            embeddings, server_tokens = result
            num_tokens, source = sum(map(len, server_tokens)), 'server'
        else:
            embeddings = result
            num_tokens = sum(len(t) if is_tokenized else len(t.split()) for t in texts)
            source = 'whitespace'
        metrics.sentences.inc(len(texts))
        metrics.tokens.labels(source).inc(num_tokens)
        return embeddings, num_tokens

    @app.before_request
    def start():
        g.started = time.perf_counter()
        if not config.auth_token or request.method == 'OPTIONS' or request.path in OPEN_ENDPOINTS:
            return None
        scheme, _, token = request.headers.get('Authorization', '').partition(' ')
        if scheme.lower() != 'bearer' or not hmac.compare_digest(token.strip().encode(), config.auth_token.encode()):
            raise ApiError(401, 'missing or wrong token: send the header "Authorization: Bearer <token>"',
                           'unauthorized')
        return None

    @app.after_request
    def count(response):
        endpoint = request.url_rule.rule if request.url_rule else 'unmatched'
        metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        if 'started' in g:
            elapsed = time.perf_counter() - g.started
            metrics.latency.labels(endpoint).observe(elapsed)
            logger.debug('%s %s -> %d in %.1f ms', request.method, request.path, response.status_code, 1000 * elapsed)
        return response

    def error_response(status: int, message: str, kind: str):
        metrics.errors.labels(kind).inc()
        response = jsonify(status=status, error=message)
        response.status_code = status
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        logger.info('%s %s -> %d: %s', request.method, request.path, error.status, error.message)
        return error_response(error.status, error.message, error.kind)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        message = error.description
        if isinstance(error, RequestEntityTooLarge):
            message = f'the request body is larger than the limit of {config.max_body_bytes} bytes'
        return error_response(error.code, message, error.name.lower().replace(' ', '_'))

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        logger.exception('unexpected error on %s %s', request.method, request.path)
        return error_response(500, f'internal error ({type(error).__name__}); see the server log', 'internal')

    @app.post('/encode')
    def encode_texts():
        body = _read_body(config.max_body_bytes)
        if 'texts' not in body:
            raise ApiError(400, 'missing "texts": send {"id": 1, "texts": ["first sentence", "second one"]}',
                           'bad_request')
        request_id, is_tokenized = body.get('id'), body.get('is_tokenized', False)
        if not isinstance(request_id, (int, float, str, type(None))) or isinstance(request_id, bool):
            raise ApiError(400, f'"id" must be a number or a string, got {type(request_id).__name__}', 'bad_request')
        if not isinstance(is_tokenized, bool):
            raise ApiError(400, f'"is_tokenized" must be true or false, got {is_tokenized!r}', 'bad_request')
        embeddings, _ = encode(body['texts'], is_tokenized)
        return jsonify(id=request_id, result=embeddings.tolist(), status=200)

    @app.post('/v1/embeddings')
    def embeddings():
        body = _read_body(config.max_body_bytes)
        texts = _embedding_inputs(body)
        encoding_format = body.get('encoding_format') or 'float'
        if encoding_format not in ('float', 'base64'):
            raise ApiError(400, f'"encoding_format" must be "float" or "base64", got {encoding_format!r}',
                           'bad_request')
        model = body.get('model') or learn_server()['model']
        if not isinstance(model, str):
            raise ApiError(400, f'"model" must be a string, got {type(model).__name__}', 'bad_request')
        vectors, num_tokens = encode(texts)
        if encoding_format == 'base64':
            rows = [base64.b64encode(row.astype('<f4').tobytes()).decode('ascii') for row in vectors]
        else:
            rows = vectors.tolist()
        return jsonify(object='list', model=model,
                       data=[{'object': 'embedding', 'index': i, 'embedding': row} for i, row in enumerate(rows)],
                       usage={'prompt_tokens': num_tokens, 'total_tokens': num_tokens})

    @app.get('/status/server')
    def status_server():
        return jsonify(server_status())

    @app.get('/status/client')
    def status_client():
        return jsonify({**client_pool.status, 'max_concurrency': config.http_max_connect})

    @app.get('/health')
    def health():
        return jsonify(status=200, alive=True, version=__version__)

    @app.get('/ready')
    def ready():
        try:
            status = server_status()
        except ApiError as error:
            return error_response(503, f'not ready: {error.message}', 'not_ready')
        num_ready = status.get('statistic', {}).get('num_ready_worker', 0)
        num_worker = status.get('num_worker', 1)
        if num_ready < num_worker:
            return error_response(503, f'not ready: {num_ready} of {num_worker} workers have loaded the model',
                                  'not_ready')
        return jsonify(status=200, ready=True, num_ready_worker=num_ready, num_worker=num_worker)

    @app.get('/metrics')
    def prometheus_metrics():
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)

    @app.get('/openapi.json')
    def openapi():
        return jsonify(openapi_document(config))

    return app


# ---- process entry point ------------------------------------------------------------------

def run_http_proxy(config: HttpConfig) -> None:
    """Serve the proxy with waitress until killed, or until ``config.parent_pid`` has gone."""
    from waitress import serve

    logger = set_logger('HTTP', config.verbose)
    pool = ConcurrentBertClient(max_concurrency=config.http_max_connect, ip=config.server_ip, port=config.port,
                                port_out=config.port_out, ignore_all_checks=True, timeout=config.request_timeout_ms,
                                server_public_key=config.server_public_key, client_secret_key=config.client_secret_key)
    app = create_app(config, pool)
    if config.parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(config.parent_pid, logger), daemon=True,
                         name='bert-http-parent-watch').start()
    logger.info('HTTP proxy on http://%s:%d -> tcp://%s:%d/%d with %d pooled clients', config.bind,
                config.http_port, config.server_ip, config.port, config.port_out, config.http_max_connect)
    # Threads beyond the pool keep /health answering while every pooled client is busy. Waitress answers
    # bodies over its own limit in plain text, so its limit sits above ours, which answers in JSON.
    serve(app, host=config.bind, port=config.http_port, threads=config.http_max_connect + 4,
          max_request_body_size=4 * config.max_body_bytes, ident='bert-serving')


def main(argv=None) -> None:
    """``python -m bert_serving.server.http``: run the proxy alone, in front of a server started elsewhere."""
    defaults = HttpConfig(http_port=8125)
    parser = argparse.ArgumentParser(prog='python -m bert_serving.server.http',
                                     description='HTTP proxy in front of a running bert-serving server.')
    parser.add_argument('-http_port', type=int, required=True, help='port of the HTTP server')
    parser.add_argument('-ip', dest='server_ip', default=defaults.server_ip, help='host of the bert-serving server')
    parser.add_argument('-port', type=int, default=defaults.port, help='the server\'s -port')
    parser.add_argument('-port_out', type=int, default=defaults.port_out, help='the server\'s -port_out')
    parser.add_argument('-bind', default=defaults.bind, help='interface the HTTP server listens on')
    parser.add_argument('-http_max_connect', type=int, default=defaults.http_max_connect,
                        help='pooled clients, i.e. encodes in flight at once')
    parser.add_argument('-cors', default=defaults.cors, help='allowed origins: *, or a comma-separated list')
    parser.add_argument('-max_body_bytes', type=int, default=defaults.max_body_bytes,
                        help='larger request bodies get 413')
    parser.add_argument('-auth_token', default=None, help='require "Authorization: Bearer <token>"')
    parser.add_argument('-request_timeout_ms', type=int, default=defaults.request_timeout_ms,
                        help='longest wait for the server before answering 504')
    parser.add_argument('-server_public_key', default=None,
                        help='CurveZMQ: the server\'s server.key (with -client_secret_key)')
    parser.add_argument('-client_secret_key', default=None,
                        help='CurveZMQ: the proxy\'s NAME.key_secret, whose public key the server lets in')
    parser.add_argument('-parent_pid', type=int, default=None, help='exit once this process has gone')
    parser.add_argument('-verbose', action='store_true', help='log every request')
    run_http_proxy(HttpConfig(**vars(parser.parse_args(argv))))


def _exit_with_parent(parent_pid: int, logger) -> None:
    """Exit the process once the parent has gone (this process was re-parented)."""
    while os.getppid() == parent_pid:
        time.sleep(1)
    logger.info('parent process %d has gone: stopping the HTTP proxy', parent_pid)
    os._exit(0)


def openapi_document(config: HttpConfig) -> dict:
    """The OpenAPI 3 description of every endpoint."""
    def json_body(schema):
        return {'required': True, 'content': {'application/json': {'schema': schema}}}

    def reply(description, schema=None, media='application/json'):
        content = {media: {'schema': schema or {'type': 'object'}}}
        return {'description': description, 'content': content}

    error = {'$ref': '#/components/schemas/Error'}
    errors = {str(code): reply(text, error) for code, text in (
        (400, 'malformed request'), (401, 'missing or wrong bearer token'), (413, 'body too large'),
        (502, 'the server failed the request'), (503, 'the server is busy'), (504, 'the server did not answer in time'))}
    encode_request = {
        'type': 'object', 'required': ['texts'],
        'properties': {'id': {'oneOf': [{'type': 'integer'}, {'type': 'string'}], 'description': 'echoed back'},
                       'texts': {'type': 'array', 'minItems': 1,
                                 'items': {'oneOf': [{'type': 'string'},
                                                     {'type': 'array', 'items': {'type': 'string'}}]},
                                 'description': 'sentences, or token lists when is_tokenized'},
                       'is_tokenized': {'type': 'boolean', 'default': False}}}
    form_request = {'type': 'object', 'properties': {
        'id': {'type': 'string'}, 'is_tokenized': {'type': 'string', 'enum': ['true', 'false']},
        'texts': {'type': 'array', 'items': {'type': 'string'},
                  'description': 'repeated field, or one field holding a JSON list'}}}
    embeddings_request = {
        'type': 'object', 'required': ['input'],
        'properties': {'input': {'oneOf': [{'type': 'string'},
                                           {'type': 'array', 'minItems': 1, 'items': {'type': 'string'}}]},
                       'model': {'type': 'string', 'description': 'echoed back; defaults to the model folder name'},
                       'encoding_format': {'type': 'string', 'enum': ['float', 'base64'], 'default': 'float',
                                           'description': 'base64 = little-endian float32 bytes of each vector'}}}
    embeddings_reply = {
        'type': 'object', 'properties': {
            'object': {'const': 'list'}, 'model': {'type': 'string'},
            'data': {'type': 'array', 'items': {'type': 'object', 'properties': {
                'object': {'const': 'embedding'}, 'index': {'type': 'integer'},
                'embedding': {'oneOf': [{'type': 'array', 'items': {'type': 'number'}}, {'type': 'string'}]}}}},
            'usage': {'type': 'object', 'properties': {'prompt_tokens': {'type': 'integer'},
                                                       'total_tokens': {'type': 'integer'}},
                      'description': 'tokens of the server tokenization when it sends them '
                                     '(-show_tokens_to_client), else whitespace-separated words'}}}

    def get(summary, description, responses=None):
        return {'get': {'summary': summary, 'responses': {'200': reply(description), **(responses or {})}}}

    paths = {
        '/encode': {'post': {
            'summary': 'Encode sentences (the bert-as-service 1.10 API)',
            'requestBody': {'required': True, 'content': {
                'application/json': {'schema': encode_request},
                'application/x-www-form-urlencoded': {'schema': form_request}}},
            'responses': {'200': reply('one vector per sentence, in order', {
                'type': 'object', 'properties': {
                    'id': {}, 'status': {'const': 200},
                    'result': {'type': 'array', 'items': {'type': 'array'}}}}), **errors}}},
        '/v1/embeddings': {'post': {
            'summary': 'Embed text in the shape of the OpenAI embeddings API',
            'requestBody': json_body(embeddings_request),
            'responses': {'200': reply('one embedding per input', embeddings_reply), **errors}}},
        '/status/server': get('The server configuration and statistics', 'SHOW_STATUS of the server'),
        '/status/client': get('State of a pooled client of the proxy', 'client status'),
        '/health': get('Whether the proxy process is up', 'alive'),
        '/ready': get('Whether every worker has loaded the model', 'ready', {'503': reply('not ready', error)}),
        '/metrics': {'get': {'summary': 'Prometheus metrics of the proxy and the server', 'responses': {
            '200': reply('Prometheus text format', {'type': 'string'}, 'text/plain')}}},
        '/openapi.json': get('This document', 'OpenAPI 3 document'),
    }
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


if __name__ == '__main__':
    main()
