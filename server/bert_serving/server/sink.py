"""The sink: reassembles rows into whole requests, in order, and publishes them to clients.

``JobTable`` is the pure part (no sockets) and is tested alone; ``run_sink`` is the
process around it.
"""

import json
import os
import signal
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np
import zmq

from . import protocol
from .logger import set_logger
from .security import make_curve_server, start_authenticator

ORPHAN_TTL_S = 60.0        # results that arrive before their job's registration wait this long
SUBSCRIBER_GRACE_S = 5.0   # replies for a client whose subscription has not arrived yet wait this long
FAILED_JOBS_REMEMBERED = 10_000


class JobAssembly:
    """Rows of one request, arriving in parts in any order."""

    def __init__(self, identity: bytes, request_id: bytes, n_rows: int):
        self.identity = identity
        self.request_id = request_id
        self.n_rows = n_rows
        self.received_rows = 0
        self._parts = {}  # offset -> (array, tokens)

    @property
    def done(self) -> bool:
        return self.received_rows == self.n_rows

    def add(self, offset: int, array: np.ndarray, tokens) -> None:
        if offset in self._parts:  # a re-run after a worker fault may deliver a part twice
            return
        self._parts[offset] = (array, tokens)
        self.received_rows += len(array)

    def result(self) -> tuple[np.ndarray, list | None]:
        """All rows in request order; token-level parts are zero-padded to the longest part."""
        parts = [self._parts[offset] for offset in sorted(self._parts)]
        arrays = [array for array, _ in parts]
        if arrays[0].ndim == 3:
            length = max(array.shape[1] for array in arrays)
            arrays = [np.pad(a, ((0, 0), (0, length - a.shape[1]), (0, 0))) for a in arrays]
        tokens = None
        if parts[0][1] is not None:
            tokens = [row for _, part_tokens in parts for row in part_tokens]
        return np.concatenate(arrays, axis=0), tokens


class JobTable:
    """Pending requests by job id, plus results that came before their registration."""

    def __init__(self):
        self.jobs: dict[int, JobAssembly] = {}
        self._orphans: dict[int, list] = {}          # job_id -> [(arrival, offset, array, tokens)]
        self._failed = OrderedDict()                  # job ids whose late parts are dropped

    def register(self, job_id: int, identity: bytes, request_id: bytes, n_rows: int) -> JobAssembly | None:
        """Start collecting a job; returns it when results that came early already complete it."""
        job = JobAssembly(identity, request_id, n_rows)
        self.jobs[job_id] = job
        for _, offset, array, tokens in self._orphans.pop(job_id, []):
            job.add(offset, array, tokens)
        return self._pop_if_done(job_id)

    def add_result(self, job_id: int, offset: int, array: np.ndarray, tokens) -> JobAssembly | None:
        """Store a part; returns the job once all its rows are in."""
        if job_id in self._failed:
            return None
        job = self.jobs.get(job_id)
        if job is None:
            self._orphans.setdefault(job_id, []).append((time.monotonic(), offset, array, tokens))
            return None
        job.add(offset, array, tokens)
        return self._pop_if_done(job_id)

    def fail(self, job_id: int) -> JobAssembly | None:
        """Forget a job whose rows cannot be computed; returns it if it was registered."""
        self._failed[job_id] = True
        while len(self._failed) > FAILED_JOBS_REMEMBERED:
            self._failed.popitem(last=False)
        self._orphans.pop(job_id, None)
        return self.jobs.pop(job_id, None)

    def expire_orphans(self, now: float) -> int:
        """Drop early results whose registration never came; returns how many jobs were dropped."""
        stale = [job_id for job_id, parts in self._orphans.items() if now - parts[0][0] > ORPHAN_TTL_S]
        for job_id in stale:
            del self._orphans[job_id]
        return len(stale)

    def _pop_if_done(self, job_id: int) -> JobAssembly | None:
        job = self.jobs[job_id]
        if job.done:
            return self.jobs.pop(job_id)
        return None


class SubscriberTracker:
    """Knows which identities have subscribed on the XPUB socket.

    A reply for an identity that has not subscribed yet (the client's SUB socket is
    still connecting) is held back for a few seconds instead of being lost.
    """

    def __init__(self):
        self.subscribed = set()
        self._held = deque()  # (deadline, identity, frames)

    def on_subscription(self, message: bytes) -> list[list[bytes]]:
        """Handle an XPUB (un)subscribe message; returns held replies that can go now."""
        if not message:
            return []
        topic = message[1:]
        if message[0] == 1:
            self.subscribed.add(topic)
        elif message[0] == 0:
            self.subscribed.discard(topic)
        return self._release(time.monotonic())

    def route(self, identity: bytes, frames: list[bytes]) -> bool:
        """True when the reply can be sent now; otherwise it is held."""
        if identity in self.subscribed:
            return True
        self._held.append((time.monotonic() + SUBSCRIBER_GRACE_S, identity, frames))
        return False

    def _release(self, now: float) -> list[list[bytes]]:
        ready, waiting = [], deque()
        for deadline, identity, frames in self._held:
            if identity in self.subscribed or now >= deadline:
                ready.append(frames)
            else:
                waiting.append((deadline, identity, frames))
        self._held = waiting
        return ready

    def expired(self) -> list[list[bytes]]:
        """Held replies whose grace time is over (sent anyway: a late subscriber may still get them)."""
        return self._release(time.monotonic())


@dataclass(frozen=True)
class SinkConfig:
    address_in: str      # PULL, bound: ventilator and workers push here
    port_out: int        # XPUB, bound on bind_host
    bind_host: str
    parent_pid: int
    verbose: bool
    curve_secret_key: str | None = None   # with curve_client_keys: CurveZMQ on the published results
    curve_client_keys: str | None = None


def run_sink(config: SinkConfig) -> None:
    """Process entry point of the sink (Ctrl-C is for the server process, which stops the sink)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logger = set_logger('SINK', config.verbose)
    context = zmq.Context()
    receiver = context.socket(zmq.PULL)
    receiver.bind(config.address_in)
    authenticator = None
    publisher = context.socket(zmq.XPUB)
    if config.curve_client_keys:
        authenticator = start_authenticator(context, config.curve_client_keys)
        make_curve_server(publisher, config.curve_secret_key)
    publisher.setsockopt(zmq.SNDHWM, 0)        # never drop a result because a client reads slowly
    publisher.setsockopt(zmq.XPUB_VERBOSE, 1)  # see every subscription, also of clones with one identity
    publisher.setsockopt(zmq.LINGER, 2000)
    publisher.bind(f'tcp://{config.bind_host}:{config.port_out}')
    try:
        Sink(receiver, publisher, logger).serve(config.parent_pid)
    finally:
        receiver.close(0)
        publisher.close()
        if authenticator is not None:
            authenticator.stop()
        context.term()
        logger.info('terminated')


class Sink:
    """The publishing loop around a JobTable."""

    def __init__(self, receiver, publisher, logger):
        self.receiver = receiver
        self.publisher = publisher
        self.logger = logger
        self.table = JobTable()
        self.subscribers = SubscriberTracker()
        self.num_published = 0
        self.num_errors = 0

    def serve(self, parent_pid: int) -> None:
        poller = zmq.Poller()
        poller.register(self.receiver, zmq.POLLIN)
        poller.register(self.publisher, zmq.POLLIN)
        self.logger.info('ready')
        while True:
            events = dict(poller.poll(500))
            if self.publisher in events:
                for frames in self.subscribers.on_subscription(self.publisher.recv()):
                    self.publisher.send_multipart(frames)
            if self.receiver in events:
                if not self._handle(self.receiver.recv_multipart()):
                    self._drain()
                    return
            for frames in self.subscribers.expired():
                self.publisher.send_multipart(frames)
            self.table.expire_orphans(time.monotonic())
            if os.getppid() != parent_pid:
                self.logger.error('the server process is gone, stopping')
                return

    def _drain(self) -> None:
        """Publish results that workers sent just before the stop (they travel on other pipes)."""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and self.receiver.poll(300):
            self._handle(self.receiver.recv_multipart())
        for frames in self.subscribers.expired():
            self.publisher.send_multipart(frames)

    def _handle(self, frames: list[bytes]) -> bool:
        """Handle one internal message; False means stop."""
        kind = frames[0]
        if kind == protocol.RESULT:  # four frames per part
            for at in range(1, len(frames), 4):
                job_id, offset, info, raw = frames[at:at + 4]
                array, tokens = protocol.decode_array(info, raw)
                self._publish_if_done(self.table.add_result(int(job_id), int(offset), array, tokens or None))
        elif kind == protocol.REGISTER:
            _, job_id, identity, request_id, n_rows = frames
            self._publish_if_done(self.table.register(int(job_id), identity, request_id, int(n_rows)))
        elif kind == protocol.FAIL:
            _, job_id, error_type, message = frames
            job = self.table.fail(int(job_id))
            if job is not None:
                self._publish_error(job.identity, job.request_id, error_type.decode(), message.decode())
        elif kind == protocol.ERROR:
            _, identity, request_id, error_type, message = frames
            self._publish_error(identity, request_id, error_type.decode(), message.decode())
        elif kind == protocol.CONTROL:
            _, identity, request_id, body = frames
            self._publish_control(identity, request_id, body)
        elif kind == protocol.STOP:
            self.logger.info('stop requested, %d requests still pending', len(self.table.jobs))
            return False
        return True

    def _send(self, identity: bytes, frames: list[bytes]) -> None:
        if self.subscribers.route(identity, frames):
            self.publisher.send_multipart(frames)

    def _publish_if_done(self, job: JobAssembly | None) -> None:
        if job is None:
            return
        array, tokens = job.result()
        info, raw = protocol.encode_array(array, tokens)
        self._send(job.identity, [job.identity, info, raw, job.request_id])
        self.num_published += 1
        self.logger.debug('job %s#%s done: %s', job.identity, job.request_id, array.shape)

    def _publish_error(self, identity: bytes, request_id: bytes, error_type: str, message: str) -> None:
        self.num_errors += 1
        self.logger.warning('request %r#%s failed: %s: %s', identity, request_id, error_type, message)
        self._send(identity, [identity, protocol.error_info(error_type, message), b'', request_id])

    def _publish_control(self, identity: bytes, request_id: bytes, body: bytes) -> None:
        reply = json.loads(body)
        if 'statistic' in reply:
            reply['statistic'].update({'num_published_result': self.num_published,
                                       'num_error_reply': self.num_errors,
                                       'num_pending_job': len(self.table.jobs)})
        self._send(identity, [identity, json.dumps(reply).encode(), request_id])
