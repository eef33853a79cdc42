"""The proxy as a process: ``run_http_proxy`` serves it with granian; ``main`` is the standalone CLI."""
import argparse
import functools
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

from ..logger import set_logger
from .app import create_app
from .config import HttpConfig
from .pool import connect

WORKER_STOP_TIMEOUT_S = 3  # requests still in flight when the proxy stops get this long to finish
# Granian's own lines (such as a worker that died and was replaced) in the shape of ours, on stderr.
GRANIAN_LOGGING = {
    'formatters': {'generic': {'()': 'logging.Formatter', 'fmt': '%(levelname).1s:HTTP:[granian] %(message)s'},
                   'access': {'()': 'logging.Formatter', 'fmt': '%(message)s'}},
    'handlers': {'console': {'formatter': 'generic', 'class': 'logging.StreamHandler', 'stream': 'ext://sys.stderr'},
                 'access': {'formatter': 'access', 'class': 'logging.StreamHandler', 'stream': 'ext://sys.stderr'}},
}


def run_http_proxy(config: HttpConfig) -> None:
    """Serve the proxy until SIGTERM or SIGINT, or until ``config.parent_pid`` has gone.

    This process is granian's main process: it owns the port and one worker process, which runs the Flask app.
    Granian reads and writes HTTP in Rust threads, so the worker's GIL is left to the app: a fifth less CPU
    per request than waitress, whose HTTP parsing and writing took the GIL from the app (docs/performance.md).
    """
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    logger = set_logger('HTTP', config.verbose)
    try:
        check_port_is_free(config.bind, config.http_port)
    except OSError as error:
        logger.error('the HTTP proxy cannot listen on %s:%d: %s', config.bind, config.http_port, error.strerror)
        sys.exit(1)
    # The server starts the proxy as a daemonic process, and daemonic processes may not start children. This
    # one is still stopped with the server: when it stops, it terminates this process, whose main
    # thread (granian's) then stops the worker.
    multiprocessing.current_process().daemon = False
    if config.parent_pid is not None:
        _watch_parent(config.parent_pid, functools.partial(_stop_as_orphan, config.parent_pid, logger))
    granian = Granian('bert_serving.server.http.cli:load_app', address=config.bind, port=config.http_port,
                      interface=Interfaces.WSGI, workers=1, respawn_failed_workers=True, websockets=False,
                      # threads beyond the pool keep /health answering while every pooled client is busy
                      blocking_threads=config.http_max_connect + 4, workers_kill_timeout=WORKER_STOP_TIMEOUT_S,
                      log_level=LogLevels.info if config.verbose else LogLevels.error, log_dictconfig=GRANIAN_LOGGING)
    logger.info('HTTP proxy on http://%s:%d -> tcp://%s:%d/%d with %d pooled clients', config.bind,
                config.http_port, config.server_ip, config.port, config.port_out, config.http_max_connect)
    granian.serve(target_loader=functools.partial(load_app, config), wrap_loader=False)


def load_app(config: HttpConfig):
    """The proxy's Flask app, built in granian's worker process, which exits once granian's has gone."""
    _watch_parent(os.getppid(), functools.partial(os._exit, 0))
    return create_app(config, connect(config))


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


def check_port_is_free(host: str, port: int) -> None:
    """Raise OSError when something listens on ``host:port``. Granian's workers bind with SO_REUSEPORT, so
    without this a second proxy on a taken port would start and silently answer part of its requests."""
    with socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        probe.bind((host, port))


def _watch_parent(parent_pid: int, on_gone) -> None:
    """Call ``on_gone()`` from a daemon thread once this process's parent is no longer ``parent_pid``."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(1)
        on_gone()

    threading.Thread(target=watch, daemon=True, name='bert-http-parent-watch').start()


def _stop_as_orphan(parent_pid: int, logger) -> None:
    logger.info('parent process %d has gone: stopping the HTTP proxy', parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)  # granian stops its worker, then itself
