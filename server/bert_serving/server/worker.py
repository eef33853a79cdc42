"""A worker process: one device, one frozen graph; takes batches, sends rows to the sink."""

import json
import logging
import os
import signal
import traceback
from dataclasses import dataclass

import numpy as np
import zmq

from . import protocol
from .batching import PendingPart
from .heap import HeapTrimmer
from .logger import set_logger
from .model.strategy import PoolingStrategy


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: int
    gpu_id: int | None          # None = CPU
    graph_path: str
    vocab_path: str
    ventilator_address: str     # ROUTER of the ventilator
    sink_address: str           # PULL of the sink
    parent_pid: int
    max_seq_len: int | None
    do_lower_case: bool
    add_special_tokens: bool
    pooling_strategy: PoolingStrategy
    model_max_len: int
    fixed_embed_length: bool
    xla: bool
    gpu_memory_fraction: float
    show_tokens: bool
    verbose: bool
    max_batch_tokens: int | None = None   # None: the device's default
    max_segments: int = 2       # 3 for a classifier: a ||| b ||| c as fine-tuning encodes text_a/b/c


def run_worker(configs, parent_pid: int) -> None:
    """Process entry point: import TensorFlow, take this worker's WorkerConfig from ``configs`` (the read end of
    a pipe from the server, which sends it once the graph is written: the import overlaps the graph's build),
    load the graph on the device, then serve batches until STOP.

    Ctrl-C reaches the whole process group; the server process decides when workers stop.
    The process ends with os._exit once its sockets are closed: TensorFlow's interpreter
    teardown can take seconds and holds up a clean shutdown for nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = 0
    try:
        config = _await_config(configs, parent_pid)
        if config is not None:
            _serve(config)
    except SystemExit as exit_request:
        code = exit_request.code if isinstance(exit_request.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _await_config(configs, parent_pid: int) -> WorkerConfig | None:
    """The config the server sends, after TensorFlow's import; None when the server closed the pipe without
    sending one (its graph build failed) or is gone."""
    from .model import encoder  # noqa: F401  (loads TensorFlow, the longest part of a worker's start)

    while not configs.poll(1.0):
        if os.getppid() != parent_pid:
            return None
    try:
        return configs.recv()
    except EOFError:
        return None


def _serve(config: WorkerConfig) -> None:
    logger = set_logger(f'WORKER-{config.worker_id}', config.verbose)
    context = zmq.Context()
    to_ventilator = context.socket(zmq.DEALER)
    to_ventilator.setsockopt(zmq.IDENTITY, b'%d' % config.worker_id)
    to_ventilator.setsockopt(zmq.LINGER, 0)
    to_ventilator.connect(config.ventilator_address)
    to_sink = context.socket(zmq.PUSH)
    to_sink.setsockopt(zmq.LINGER, 5000)
    to_sink.connect(config.sink_address)
    try:
        encoder = load_encoder(config, logger)
    except Exception as error:  # report why, so the server can tell the user instead of waiting
        logger.error('could not load the model: %s', error, exc_info=True)
        to_ventilator.send_multipart([protocol.FAILED, b'%d' % config.worker_id, str(error).encode()])
        _close(context, to_ventilator, to_sink)
        raise SystemExit(1)
    worker = Worker(config, encoder, to_sink, logger)
    heap = HeapTrimmer()
    to_ventilator.send_multipart([protocol.READY, b'%d' % config.worker_id])
    logger.info('ready and listening')
    try:
        while True:
            if not to_ventilator.poll(1000):
                if os.getppid() != config.parent_pid:
                    logger.error('the server process is gone, stopping')
                    return
                continue
            frames = to_ventilator.recv_multipart()
            if frames[0] == protocol.STOP:
                return
            _, batch_id, payload = frames
            worker.run_batch([PendingPart.from_json(part) for part in json.loads(payload)])
            to_ventilator.send_multipart([protocol.DONE, batch_id])
            heap.maybe_trim()
    finally:
        _close(context, to_ventilator, to_sink)
        logger.info('terminated')


def _close(context, *sockets) -> None:
    for socket in sockets:
        socket.close()
    context.term()


def load_encoder(config, logger):
    """A warmed-up SentenceEncoder on the config's device; ``config`` has WorkerConfig's model and device fields.

    Bulk encoding's actors load theirs here too, so both run the same encoder.
    """
    from .model.encoder import SentenceEncoder
    from .model.graph import select_device

    device = select_device(config.gpu_id, config.gpu_memory_fraction)
    logger.info('loading the graph on %s%s', device, ' with XLA' if config.xla else '')
    encoder = SentenceEncoder(
        config.graph_path, config.vocab_path, config.max_seq_len, do_lower_case=config.do_lower_case,
        add_special_tokens=config.add_special_tokens, pooling_strategy=config.pooling_strategy,
        model_max_len=config.model_max_len, fixed_embed_length=config.fixed_embed_length,
        device=device, xla=config.xla, max_batch_tokens=config.max_batch_tokens, max_segments=config.max_segments)
    encoder.encode(['warm up the graph'])
    return encoder


class Worker:
    """Runs batches through a SentenceEncoder and sends each part's rows to the sink."""

    def __init__(self, config: WorkerConfig, encoder, to_sink, logger):
        self.config = config
        self.encoder = encoder
        self.to_sink = to_sink
        self.logger = logger
        # Token-level results of a dynamic-length server are trimmed per part; the sink pads
        # them to the longest row of each request, as the 1.10 server did.
        self.trim_token_level = (config.pooling_strategy == PoolingStrategy.NONE
                                 and config.max_seq_len is None and not config.fixed_embed_length)

    def run_batch(self, parts: list[PendingPart]) -> None:
        """One forward pass per input kind (plain text / pre-tokenized) over all parts."""
        for tokenized in (False, True):
            group = [part for part in parts if part.tokenized == tokenized]
            if group:
                self._run_group(group, tokenized)

    def _run_group(self, parts: list[PendingPart], tokenized: bool) -> None:
        texts = [text for part in parts for text in part.texts]
        try:
            vectors, tokens = self.encoder.encode(texts, is_tokenized=tokenized)
        except ValueError as error:
            if len(parts) > 1:  # find the bad request without failing its neighbours
                for part in parts:
                    self._run_group([part], tokenized)
                return
            self._fail(parts[0], 'BadRequest', str(error))
            return
        except Exception as error:  # a device error must not kill the worker or hang the clients
            self.logger.error('batch of %d rows failed: %s', len(texts), error, exc_info=True)
            for part in parts:
                self._fail(part, type(error).__name__, str(error))
            return
        # One message for the whole group: sent part by part, the first answers brought their clients back to
        # the ventilator before the DONE that follows the last part, and ReturnWait took them for others.
        frames, start = [protocol.RESULT], 0
        for part in parts:
            end = start + len(part)
            frames += self._result_frames(part, vectors[start:end], tokens[start:end])
            start = end
        self.to_sink.send_multipart(frames)

    def _result_frames(self, part: PendingPart, vectors: np.ndarray, tokens: list) -> list[bytes]:
        if self.trim_token_level:
            vectors = vectors[:, :max(len(row) for row in tokens)]
        info, raw = protocol.encode_array(vectors, tokens if self.config.show_tokens else None)
        return [b'%d' % part.job_id, b'%d' % part.offset, info, raw]

    def _fail(self, part: PendingPart, error_type: str, message: str) -> None:
        self.to_sink.send_multipart([protocol.FAIL, b'%d' % part.job_id, error_type.encode(), message.encode()])
