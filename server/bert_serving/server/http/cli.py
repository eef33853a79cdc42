"""The proxy as a process: ``run_http_proxy`` serves it with waitress; ``main`` is the standalone CLI."""
import argparse
import os
import threading
import time

from ..logger import set_logger
from .app import create_app
from .config import HttpConfig
from .pool import connect


def run_http_proxy(config: HttpConfig) -> None:
    """Serve the proxy with waitress until killed, or until ``config.parent_pid`` has gone."""
    from waitress import serve

    logger = set_logger('HTTP', config.verbose)
    app = create_app(config, connect(config))
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
