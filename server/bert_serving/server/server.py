"""BertServer: checks the model, builds the graph, then runs the ventilator and its children."""

import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import zmq

from . import protocol
from .args import args_to_config
from .devices import plan_devices
from .logger import set_logger
from .model.checkpoint import ModelFiles, locate_model
from .model.classifier import read_labels, rerank_label
from .model.config import BertConfig
from .model.strategy import PoolingStrategy
from .model.tokenization import load_vocab
from .security import admit_proxy, curve_enabled, make_curve_server, start_authenticator
from .sink import SinkConfig
from .supervisor import Supervisor
from .ventilator import Ventilator
from .version import PROTOCOL_VERSION, __version__
from .worker import WorkerConfig


def check_model(args) -> tuple[ModelFiles, BertConfig]:
    """Find the model files and check the options against the model; ValueError says what is wrong."""
    files, config = check_encoding_options(args)
    if args.priority_batch_size < 0:
        raise ValueError('-priority_batch_size must be 0 or more')
    return files, config


def check_encoding_options(args) -> tuple[ModelFiles, BertConfig]:
    """The model files of the options of ``args.add_encoding_options``, checked against the model's config.

    With ``-task classify`` the pooling strategy becomes CLS_POOLED (what the head reads), also in the config reply.
    """
    files = locate_model(args.model_dir, config_name=args.config_name, ckpt_name=args.ckpt_name,
                         tuned_model_dir=args.tuned_model_dir)
    config = BertConfig.from_json_file(files.config_path)
    layers = config.num_hidden_layers
    if args.task == 'classify':  # the head reads the pooler output; pooling options do not apply
        args.pooling_strategy = PoolingStrategy.CLS_POOLED
    if args.pooling_strategy != PoolingStrategy.CLS_POOLED:
        bad = [layer for layer in args.pooling_layer if not -layers <= layer < layers]
        if bad:
            raise ValueError(f'-pooling_layer {bad} is out of range: the model has {layers} encoder layers, '
                             f'so use -1 (last) .. -{layers} (first), or 0 .. {layers - 1}')
    if args.max_seq_len is not None and args.max_seq_len > config.max_position_embeddings:
        raise ValueError(f'-max_seq_len {args.max_seq_len} is longer than the model allows '
                         f'(max_position_embeddings = {config.max_position_embeddings} in {files.config_path})')
    return files, config


def build_graph(files: ModelFiles, args) -> str:
    """Freeze and optimize the graph that the encoding options ask for; return the file's path."""
    vocab = load_vocab(files.vocab_path)
    special_ids = tuple(vocab[token] for token in ('[CLS]', '[SEP]') if token in vocab)
    return _build_graph(files, args, special_ids)


def _build_graph(files: ModelFiles, args, special_token_ids: tuple[int, ...]) -> str:
    """Freeze and optimize in a separate process, so this one never loads TensorFlow."""
    options = dict(pooling_strategy=args.pooling_strategy, pooling_layer=tuple(args.pooling_layer),
                   mask_cls_sep=args.mask_cls_sep, no_position_embeddings=args.no_position_embeddings,
                   fp16=args.fp16, special_token_ids=special_token_ids, task=args.task)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context('spawn')) as pool:
        return pool.submit(_build_graph_in_child, files, options, args.graph_tmp_dir).result()


def _build_graph_in_child(files: ModelFiles, options: dict, graph_tmp_dir: str | None) -> str:
    """Runs in the graph-building process: the only place besides workers that imports TensorFlow."""
    from .model.graph import GraphOptions, build_frozen_graph

    return build_frozen_graph(files, GraphOptions(**options), graph_tmp_dir)


def send_termination(ip: str, port: int, timeout_ms: int) -> None:
    """Ask the server at ip:port to stop and wait until it closes its port.

    Raises TimeoutError with a hint when no server answers, or when it does not stop in time.
    """
    context = zmq.Context()
    sender = context.socket(zmq.PUSH)
    sender.setsockopt(zmq.IMMEDIATE, 1)         # queue nothing unless a server is really there
    sender.setsockopt(zmq.SNDTIMEO, timeout_ms)
    sender.setsockopt(zmq.LINGER, 0)
    monitor = sender.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    address = f'tcp://{ip}:{port}'
    try:
        sender.connect(address)
        try:
            sender.send_multipart([b'0', protocol.TERMINATE, b'0', b'0'])
        except zmq.Again:
            raise TimeoutError(f'no server answered at {address} within {timeout_ms} ms: is it running, '
                               f'and is -port the server\'s -port (not -port_out)?') from None
        if not monitor.poll(timeout_ms):
            raise TimeoutError(f'the server at {address} got the request but was still up after {timeout_ms} ms')
    finally:
        sender.disable_monitor()
        monitor.close(0)
        sender.close(0)
        context.term()


class BertServer(threading.Thread):
    """A BERT sentence-encoding server.

    ``BertServer(get_args_parser().parse_args([...]))`` checks the model and builds the
    graph (errors surface here), ``start()`` launches the sink, the workers and the
    ventilator; ``is_ready`` is set once every worker has loaded the graph. As a context
    manager it waits until ready and stops everything on exit.
    """

    def __init__(self, args):
        super().__init__(name='bert-ventilator', daemon=True)
        self.args = args
        self.logger = set_logger('VENTILATOR', args.verbose)
        # children inherit it: TensorFlow's native start-up lines only with -verbose (see model/tensorflow_quiet)
        os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '0' if args.verbose else '2')
        self.model_files, self.bert_config = check_model(args)
        # read here, before the graph build, so that a missing labels.txt stops the start in a second
        self.labels = read_labels(self.model_files) if args.task == 'classify' else None
        self.curve = curve_enabled(args)
        self.device_map = plan_devices(args.num_worker, args.cpu, args.device_map, self.logger)
        self.is_ready = threading.Event()
        self.stopped = threading.Event()
        self.exception = None
        self._stop_requested = threading.Event()
        self._ipc_dir = tempfile.mkdtemp(prefix='bert-serving-')
        self.addresses = {'ventilator -> worker': f'ipc://{self._ipc_dir}/workers',
                          'worker -> sink': f'ipc://{self._ipc_dir}/sink',
                          'ventilator <-> sink': f'ipc://{self._ipc_dir}/sink'}
        # With CurveZMQ, the server's own HTTP proxy gets a key pair of its own, let in beside the clients.
        self.client_keys_dir, self.proxy_secret_key = args.curve_client_keys, None
        if self.curve and args.http_port is not None:
            self.client_keys_dir, self.proxy_secret_key = admit_proxy(args.curve_client_keys,
                                                                      os.path.join(self._ipc_dir, 'curve'))
        self.graph_path = None
        self.supervisor = Supervisor(range(args.num_worker), self.logger)
        self.supervisor.spawn_workers()  # they load TensorFlow while the graph is built
        try:
            self.graph_path = self._build_graph()
        except BaseException:
            self._release()
            raise
        self.status_static = {
            'server_version': PROTOCOL_VERSION,
            'bert_serving_version': __version__,
            'tensorflow_version': _installed_version('tensorflow', 'tensorflow-cpu'),
            'python_version': sys.version,
            'pyzmq_version': zmq.pyzmq_version(),
            'zmq_version': zmq.zmq_version(),
            'server_start_time': time.strftime('%Y-%m-%d %H:%M:%S'),
            'model_layout': self.model_files.layout,
            'bert_config': self.bert_config.to_dict(),
            'labels': self.labels,
            'rerank_label': rerank_label(self.labels) if self.labels else None,
        }

    def _build_graph(self) -> str:
        self.logger.info('freeze, optimize and export the graph (%s layout, %d layers)...',
                         self.model_files.layout, self.bert_config.num_hidden_layers)
        started = time.perf_counter()
        path = build_graph(self.model_files, self.args)
        self.logger.info('optimized graph written to %s in %.1f s', path, time.perf_counter() - started)
        return path

    def describe(self) -> dict:
        """The config reply, less its per-request fields."""
        return {**args_to_config(self.args), **self.status_static, **self.addresses,
                'num_process': self.args.num_worker + 2 + (self.args.http_port is not None),
                'device_map': ['cpu' if gpu is None else gpu for gpu in self.device_map]}

    def _worker_configs(self) -> list[WorkerConfig]:
        args = self.args
        return [WorkerConfig(
            worker_id=worker_id, gpu_id=gpu_id, graph_path=self.graph_path, vocab_path=self.model_files.vocab_path,
            ventilator_address=self.addresses['ventilator -> worker'], sink_address=self.addresses['worker -> sink'],
            parent_pid=os.getpid(), max_seq_len=args.max_seq_len, do_lower_case=args.do_lower_case,
            add_special_tokens=not args.no_special_token, pooling_strategy=args.pooling_strategy,
            model_max_len=self.bert_config.max_position_embeddings, fixed_embed_length=args.fixed_embed_length,
            xla=args.xla, gpu_memory_fraction=args.gpu_memory_fraction, show_tokens=args.show_tokens_to_client,
            verbose=args.verbose, max_batch_tokens=args.max_batch_tokens,
            max_segments=3 if args.task == 'classify' else 2)
            for worker_id, gpu_id in enumerate(self.device_map)]

    def _http_config(self):
        """The proxy's settings, None without -http_port; raises when its port is taken."""
        if self.args.http_port is None:
            return None
        try:
            from .http import HttpConfig, check_port_is_free
        except ImportError as error:
            raise RuntimeError(f'-http_port needs the HTTP extra: pip install "bert-serving-server[http]" ({error})')
        keys = {}
        if self.proxy_secret_key is not None:  # the proxy reads the server's public key from its key pair file
            keys = {'server_public_key': self.args.curve_secret_key, 'client_secret_key': self.proxy_secret_key}
        config = HttpConfig.from_args(self.args, parent_pid=os.getpid(), **keys)
        try:
            check_port_is_free(config.bind, config.http_port)
        except OSError as error:
            raise RuntimeError(f'cannot listen on {config.bind}:{config.http_port} ({error.strerror}): is another '
                               f'server using it? choose another -http_port') from None
        return config

    def run(self) -> None:
        try:
            self._serve()
        except Exception as error:
            self.exception = error
            self.logger.error('the server stopped because of an error: %s', error, exc_info=self.args.verbose)
        finally:
            self._cleanup()
            self.stopped.set()

    def _serve(self) -> None:
        args = self.args
        context = zmq.Context()
        sockets = []
        authenticator = None
        try:
            frontend = context.socket(zmq.PULL)
            if self.curve:
                authenticator = start_authenticator(context, self.client_keys_dir)
                make_curve_server(frontend, args.curve_secret_key)
            _bind(frontend, f'tcp://{args.bind}:{args.port}', sockets, '-port')
            backend = context.socket(zmq.ROUTER)
            _bind(backend, self.addresses['ventilator -> worker'], sockets)
            backend.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted worker takes over its slot's identity
            self.supervisor.start(
                SinkConfig(self.addresses['worker -> sink'], args.port_out, args.bind, os.getpid(), args.verbose,
                           args.curve_secret_key, self.client_keys_dir),
                self._worker_configs(), self._http_config())
            to_sink = context.socket(zmq.PUSH)
            sockets.append(to_sink)
            to_sink.connect(self.addresses['ventilator <-> sink'])
            ventilator = Ventilator(args, frontend, backend, to_sink, self.supervisor, self.describe, self.logger)
            try:
                ventilator.serve(self._stop_requested, self.is_ready)
            finally:
                frontend.close(0)  # release the port first: clients and bert-serving-terminate see it go
                for worker_id, slot in ventilator.slots.items():
                    if slot.ready:
                        backend.send_multipart([b'%d' % worker_id, protocol.STOP])
                to_sink.send_multipart([protocol.STOP])
        finally:
            for socket in sockets:
                socket.close(linger=500)
            if authenticator is not None:
                authenticator.stop()
            context.term()

    def _cleanup(self) -> None:
        self._release()
        self.logger.info('terminated')

    def _release(self) -> None:
        """Stop the child processes, remove the sockets' folder and the graph."""
        self.supervisor.stop()
        shutil.rmtree(self._ipc_dir, ignore_errors=True)
        if self.graph_path and os.path.exists(self.graph_path):
            os.remove(self.graph_path)

    def request_stop(self) -> None:
        """Ask the server to stop, without waiting (safe in a signal handler)."""
        self._stop_requested.set()

    def close(self) -> None:
        """Stop the server and wait until every child process has exited."""
        self.request_stop()
        if self.is_alive():
            self.join()
        elif not self.stopped.is_set():  # never started: stop the workers that wait for their config
            self._cleanup()
            self.stopped.set()

    def wait_until_ready(self, timeout: float | None = None) -> None:
        """Block until every worker is ready; raises if the server failed or the timeout passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_ready.wait(0.1):
            if self.stopped.is_set():
                raise RuntimeError(f'the server stopped before it was ready: {self.exception}')
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f'the server was not ready within {timeout} s')

    def __enter__(self):
        self.start()
        self.wait_until_ready()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()

    @staticmethod
    def shutdown(args) -> None:
        """Stop the server on ``args.ip``/``args.port`` (the parsed options of bert-serving-terminate)."""
        send_termination(args.ip, args.port, args.timeout)


def _bind(socket, address: str, sockets: list, option: str = '') -> None:
    """Bind, remembering the socket for closing; a port in use gets a hint."""
    sockets.append(socket)
    try:
        socket.bind(address)
    except zmq.ZMQError as error:
        hint = f': is another server using it? choose another {option}' if option else ''
        raise RuntimeError(f'cannot listen on {address} ({error}){hint}') from None


def _installed_version(*distributions: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    for name in distributions:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None
