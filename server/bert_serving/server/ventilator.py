"""The ventilator: accepts client requests, validates them, registers them at the sink,
queues their rows and hands batches to workers that have room for one.

Workers pull: each says READY when loaded and DONE after each batch, so the ventilator
knows which rows every worker holds (a dead worker's rows are queued again) and can
wait to give small requests to a busy worker until they can share a forward pass.
"""

import json
import math
import time
from dataclasses import dataclass, field

import zmq

from . import protocol
from .batching import BatchAssembler, PendingPart, ReturnWait
from .protocol import BadRequest
from .status import ServerStatistics

DRAIN_TIMEOUT_S = 5.0   # on SIGTERM, accepted requests get this long to finish
MAX_PART_RETRIES = 1    # rows that were on a worker that died are re-run once more


@dataclass
class EncodeRequest:
    identity: bytes
    request_id: bytes
    texts: list
    tokenized: bool


@dataclass
class ControlRequest:
    identity: bytes
    request_id: bytes
    command: bytes


def _check_sentences(texts) -> bool:
    """Validate a decoded payload; returns True for pre-tokenized input."""
    if not isinstance(texts, list) or not texts:
        raise BadRequest('the payload must be a non-empty JSON list of strings (or of lists of strings)')
    tokenized = isinstance(texts[0], list)
    for index, item in enumerate(texts):
        if tokenized:
            if not isinstance(item, list) or not item:
                raise BadRequest(f'item {index} must be a non-empty list of strings, like every item of '
                                 f'pre-tokenized input, got {type(item).__name__}')
            for position, token in enumerate(item):
                if not isinstance(token, str) or not token.strip():
                    raise BadRequest(f'token {position} of item {index} must be a non-empty string, got {token!r:.40}')
        elif not isinstance(item, str):
            raise BadRequest(f'item {index} must be a string, got {type(item).__name__}')
        elif not item.strip():
            raise BadRequest(f'item {index} is empty or whitespace only')
    return tokenized


def parse_request(frames: list[bytes]) -> EncodeRequest | ControlRequest:
    """Turn the 4 frames of a client request into a request, or raise BadRequest."""
    if len(frames) != 4:
        raise BadRequest(f'expected 4 frames [identity, payload, request_id, msg_len], got {len(frames)}')
    identity, payload, request_id, msg_len = frames
    protocol.parse_int_frame(request_id, 'request_id')
    length = protocol.parse_int_frame(msg_len, 'msg_len')
    if payload in protocol.CONTROL_COMMANDS:
        return ControlRequest(identity, request_id, payload)
    try:
        texts = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as error:
        raise BadRequest(f'the payload is not valid UTF-8 JSON ({error})') from None
    tokenized = _check_sentences(texts)
    if length != len(texts):
        raise BadRequest(f'msg_len says {length} sentences but the payload holds {len(texts)}')
    return EncodeRequest(identity, request_id, texts, tokenized)


def reply_address(frames: list[bytes]) -> tuple[bytes, bytes] | None:
    """(identity, request_id) of a malformed request when they can be made out, else None."""
    if len(frames) >= 3 and frames[2].isdigit() and 0 < len(frames[0]) <= 255:
        return frames[0], frames[2]
    return None


@dataclass
class WorkerSlot:
    """What the ventilator knows of one worker process."""
    worker_id: int
    ready: bool = False
    in_flight: dict = field(default_factory=dict)  # batch_id -> list[PendingPart]
    sent_at: dict = field(default_factory=dict)    # batch_id -> time.monotonic() when it was handed out


class Ventilator:
    """The request loop. ``describe`` gives the config reply's static part."""

    def __init__(self, args, frontend, backend, to_sink, supervisor, describe, logger):
        self.args = args
        self.frontend = frontend      # PULL from clients
        self.backend = backend        # ROUTER to workers
        self.to_sink = to_sink        # PUSH to the sink
        self.supervisor = supervisor
        self.describe = describe
        self.logger = logger
        self.stats = ServerStatistics()
        self.assembler = BatchAssembler(args.max_batch_size, args.priority_batch_size)
        self.return_wait = ReturnWait(args.priority_batch_size)
        self.slots = {worker_id: WorkerSlot(worker_id) for worker_id in range(args.num_worker)}
        # per worker id, kept across restarts: forward passes and rows handed out
        self.worker_load = {worker_id: {'forward_passes': 0, 'rows': 0} for worker_id in self.slots}
        self.next_job_id = 0
        self.next_batch_id = 0
        self._last_check = time.monotonic()

    @property
    def all_ready(self) -> bool:
        return all(slot.ready for slot in self.slots.values())

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing running."""
        return not self.assembler.queued_rows and not any(slot.in_flight for slot in self.slots.values())

    def serve(self, stop_event, ready_event) -> None:
        """Run until a TERMINATION request or ``stop_event``, then finish what was accepted (bounded)."""
        poller = zmq.Poller()
        poller.register(self.frontend, zmq.POLLIN)
        poller.register(self.backend, zmq.POLLIN)
        while not stop_event.is_set():
            if self._step(poller, ready_event) is False:
                break
        poller.unregister(self.frontend)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        if not self.idle and self.all_ready:
            self.logger.info('finishing %d queued rows and the running batches before stopping',
                             self.assembler.queued_rows)
            while not self.idle and time.monotonic() < deadline:
                self._step(poller, ready_event)

    def _step(self, poller, ready_event) -> bool:
        """One round of the loop; False when a client asked the server to terminate."""
        events = dict(poller.poll(self._poll_ms()))
        if self.backend in events:
            self._on_worker_message(self.backend.recv_multipart())
            if self.all_ready and not ready_event.is_set():
                self.logger.info('all set, ready to serve requests!')
                ready_event.set()
        if self.frontend in events and not self._on_client_message(self.frontend.recv_multipart()):
            return False
        if time.monotonic() - self._last_check > 0.5:
            self._check_workers()
            self._last_check = time.monotonic()
        self._dispatch()
        return True

    def _poll_ms(self) -> int:
        """Poll until the next message, or until a worker kept waiting for returning clients should go on."""
        wait = self.return_wait.seconds_left(self.assembler.queued_rows, time.monotonic())
        return max(1, math.ceil(wait * 1000)) if wait else 100

    # --- workers ---------------------------------------------------------------------------

    def _on_worker_message(self, frames: list[bytes]) -> None:
        routing_id, kind = frames[0], frames[1]
        slot = self.slots[int(routing_id)]
        if kind == protocol.READY:
            slot.ready = True
            self.logger.debug('worker %d is ready', slot.worker_id)
        elif kind == protocol.DONE:
            batch_id, now = int(frames[2]), time.monotonic()
            parts = slot.in_flight.pop(batch_id, None)
            if parts is not None:
                seconds = now - slot.sent_at.pop(batch_id, now)
                self.return_wait.batch_done(parts, self.assembler.queued_rows, seconds, now)
        elif kind == protocol.FAILED:
            self.logger.error('worker %d could not start: %s', slot.worker_id, frames[3].decode(errors='replace'))

    def _check_workers(self) -> None:
        """Re-queue the rows of workers that died and let the supervisor replace them."""
        if not self.supervisor.sink_alive():
            raise RuntimeError('the sink process died, so no result can reach the clients; stopping the server')
        for worker_id in self.supervisor.dead_workers():
            slot = self.slots[worker_id]
            lost = [part for parts in slot.in_flight.values() for part in parts]
            self.logger.error('worker %d died holding %d rows; they are queued again', worker_id,
                              sum(len(part) for part in lost))
            self._requeue(lost)
            self.slots[worker_id] = WorkerSlot(worker_id)
            if self.supervisor.restart_worker(worker_id):
                self.stats.num_worker_restart += 1
        if self.supervisor.all_workers_failed():
            self._fail_queued('no worker could be started; see the server log')

    def _requeue(self, parts: list[PendingPart]) -> None:
        """Queue the rows of a dead worker again, unless they already killed a worker before."""
        retry, given_up = [], []
        for part in parts:
            part.attempts += 1
            (retry if part.attempts <= MAX_PART_RETRIES else given_up).append(part)
        self.assembler.requeue(retry)
        for job_id in {part.job_id for part in given_up}:
            self.logger.error('job %d was running on every worker that died; failing it', job_id)
            self._fail_job(job_id, 'WorkerDied', 'the worker running this request died repeatedly; '
                                                 'the request may be too large for the device')

    def _fail_job(self, job_id: int, error_type: str, message: str) -> None:
        self.to_sink.send_multipart([protocol.FAIL, b'%d' % job_id, error_type.encode(), message.encode()])

    def _fail_queued(self, message: str) -> None:
        failed_jobs = set()
        while self.assembler.queued_rows:
            for part in self.assembler.take():
                failed_jobs.add(part.job_id)
        for job_id in failed_jobs:
            self._fail_job(job_id, 'NoWorker', message)

    def _dispatch(self) -> None:
        """Give batches to workers with room: to an idle worker unless it waits for returning clients (see
        ``ReturnWait``), ahead only full batches."""
        for slot in self.slots.values():
            while slot.ready and self.assembler.queued_rows:
                busy, full = len(slot.in_flight), self.assembler.has_full_batch()
                if busy and (busy > self.args.prefetch_size or not full):
                    break
                if not busy:
                    if not full and self.return_wait.seconds_left(self.assembler.queued_rows, time.monotonic()):
                        break
                    self.return_wait.handed_out()
                self._send_batch(slot, self.assembler.take())

    def _send_batch(self, slot: WorkerSlot, parts: list[PendingPart]) -> None:
        self.next_batch_id += 1
        slot.in_flight[self.next_batch_id] = parts
        slot.sent_at[self.next_batch_id] = time.monotonic()
        payload = json.dumps([part.to_json() for part in parts], ensure_ascii=False).encode('utf-8')
        self.backend.send_multipart([b'%d' % slot.worker_id, protocol.BATCH, b'%d' % self.next_batch_id, payload])
        rows = sum(len(part) for part in parts)
        self.stats.on_batch(rows)
        self.worker_load[slot.worker_id]['forward_passes'] += 1
        self.worker_load[slot.worker_id]['rows'] += rows

    # --- clients ---------------------------------------------------------------------------

    def _on_client_message(self, frames: list[bytes]) -> bool:
        """Handle one request; False means the server was asked to terminate."""
        try:
            request = parse_request(frames)
        except BadRequest as error:
            self.stats.num_bad_request += 1
            self._reject(frames, 'BadRequest', str(error))
            return True
        if isinstance(request, ControlRequest):
            self.stats.on_control(request.identity)
            if request.command == protocol.TERMINATE:
                self.logger.info('termination requested by client %r', request.identity)
                return False
            self._reply_config(request)
            return True
        self.stats.on_encode(request.identity, len(request.texts))
        limit = self.args.max_queued_rows
        if self.supervisor.all_workers_failed():
            self._reject(frames, 'NoWorker', 'no worker is running: every worker failed; see the server log')
        elif len(request.texts) > limit:
            self.stats.num_bad_request += 1
            self._reject(frames, 'BadRequest', f'{len(request.texts)} sentences in one request is more than the server '
                                               f'queues at once (-max_queued_rows {limit}); send smaller requests')
        elif self.assembler.queued_rows + len(request.texts) > limit:
            self.stats.num_busy_reply += 1
            self._reject(frames, 'ServerBusy', f'the server is busy ({self.assembler.queued_rows} sentences queued, '
                                               f'-max_queued_rows {limit}); try again shortly')
        else:
            self._enqueue(request)
        return True

    def _reject(self, frames: list[bytes], error_type: str, message: str) -> None:
        address = reply_address(frames)
        self.logger.warning('rejected a request (%d frames) from %r: %s', len(frames),
                            address[0] if address else 'an unknown client', message)
        if address:
            self.to_sink.send_multipart([protocol.ERROR, *address, error_type.encode(), message.encode()])

    def _reply_config(self, request: ControlRequest) -> None:
        reply = {**self.describe(), 'client': request.identity.decode('utf-8', 'replace'),
                 'server_current_time': time.strftime('%Y-%m-%d %H:%M:%S')}
        if request.command == protocol.SHOW_STATUS:
            reply['statistic'] = {**self.stats.value, 'num_queued_row': self.assembler.queued_rows,
                                  'num_ready_worker': sum(slot.ready for slot in self.slots.values()),
                                  'num_failed_worker': self.supervisor.num_given_up,
                                  'workers': [{'id': worker_id, 'pid': self.supervisor.worker_pid(worker_id),
                                               'ready': slot.ready, 'in_flight': len(slot.in_flight),
                                               **self.worker_load[worker_id]}
                                              for worker_id, slot in self.slots.items()]}
        self.to_sink.send_multipart([protocol.CONTROL, request.identity, request.request_id,
                                     json.dumps(reply).encode()])

    def _enqueue(self, request: EncodeRequest) -> None:
        self.next_job_id += 1
        job_id = self.next_job_id
        self.to_sink.send_multipart([protocol.REGISTER, b'%d' % job_id, request.identity, request.request_id,
                                     b'%d' % len(request.texts)])
        high = self.assembler.add_request(job_id, request.texts, request.tokenized)
        self.logger.debug('request %s from %r: %d rows%s', request.request_id, request.identity,
                          len(request.texts), ' (priority)' if high else '')
