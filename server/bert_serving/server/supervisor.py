"""Starts, watches, restarts and stops the sink and worker processes."""

import multiprocessing
import os
import time
from collections import deque

from .sink import SinkConfig, run_sink
from .worker import WorkerConfig, run_worker

RESTART_WINDOW_S = 600.0
MAX_RESTARTS_IN_WINDOW = 3


class Supervisor:
    """Owns the child processes; the ventilator asks it which workers died and to replace them.

    ``spawn_workers`` starts the worker processes early, while the server builds the graph: each imports
    TensorFlow, then waits for its WorkerConfig, which ``start`` sends along with starting the sink. It must
    come before ``start``.
    """

    def __init__(self, worker_ids, logger):
        self._context = multiprocessing.get_context('spawn')  # TensorFlow does not survive a fork
        self.worker_configs: dict[int, WorkerConfig] = {}
        self.logger = logger
        self.sink = None
        self.http = None
        self.worker_ids = tuple(worker_ids)
        self.workers = {}  # worker id -> its current process, from spawn_workers on
        self._to_workers = {}  # worker id -> the write end of its config pipe, until the config is sent
        self._restarts = {worker_id: deque() for worker_id in self.worker_ids}
        self._given_up = set()
        self._stopping = False

    def spawn_workers(self) -> None:
        """Start every worker's process; each waits for its config after loading TensorFlow."""
        for worker_id in self.worker_ids:
            self._spawn_worker(worker_id)

    def start(self, sink_config: SinkConfig, worker_configs: list[WorkerConfig], http_config=None) -> None:
        """Start the sink (and the HTTP proxy), and send each worker its config."""
        self.sink = self._context.Process(target=run_sink, args=(sink_config,), name='bert-sink', daemon=True)
        self.sink.start()
        self.worker_configs = {config.worker_id: config for config in worker_configs}
        for worker_id in self.worker_configs:
            self._configure_worker(worker_id)
        if http_config is not None:
            from .http import run_http_proxy  # needs the [http] extra, so only when asked for
            self.http = self._context.Process(target=run_http_proxy, args=(http_config,), name='bert-http',
                                              daemon=True)
            self.http.start()
            self.logger.info('HTTP proxy started on port %d (pid %d)', http_config.http_port, self.http.pid)

    def _spawn_worker(self, worker_id: int) -> None:
        configs, self._to_workers[worker_id] = self._context.Pipe(duplex=False)
        process = self._context.Process(target=run_worker, args=(configs, os.getpid()),
                                        name=f'bert-worker-{worker_id}', daemon=True)
        process.start()
        configs.close()
        self.workers[worker_id] = process

    def _configure_worker(self, worker_id: int) -> None:
        config = self.worker_configs[worker_id]
        with self._to_workers.pop(worker_id) as to_worker:
            to_worker.send(config)
        device = 'CPU' if config.gpu_id is None else f'GPU {config.gpu_id}'
        self.logger.info('worker %d started on %s (pid %d)', worker_id, device, self.workers[worker_id].pid)

    def sink_alive(self) -> bool:
        return self.sink is not None and self.sink.is_alive()

    def worker_pid(self, worker_id: int):
        """The process id of the worker's current process, None before it started."""
        process = self.workers.get(worker_id)
        return process.pid if process is not None else None

    def dead_workers(self) -> list[int]:
        """Workers whose process ended and that have not been handled yet."""
        if self._stopping:
            return []
        dead = [wid for wid, process in self.workers.items() if not process.is_alive() and wid not in self._given_up]
        for worker_id in dead:
            self.logger.error('worker %d (pid %d) exited with code %s', worker_id, self.workers[worker_id].pid,
                              self.workers[worker_id].exitcode)
        return dead

    def restart_worker(self, worker_id: int) -> bool:
        """Start a replacement on the same device, unless it keeps dying; returns True when restarted."""
        history = self._restarts[worker_id]
        now = time.monotonic()
        while history and now - history[0] > RESTART_WINDOW_S:
            history.popleft()
        if len(history) >= MAX_RESTARTS_IN_WINDOW:
            self._given_up.add(worker_id)
            self.logger.error('worker %d died %d times in %d s; not restarting it again', worker_id,
                              len(history) + 1, RESTART_WINDOW_S)
            return False
        history.append(now)
        self._spawn_worker(worker_id)
        self._configure_worker(worker_id)
        return True

    @property
    def num_given_up(self) -> int:
        """Workers that died too often and are no longer restarted."""
        return len(self._given_up)

    def all_workers_failed(self) -> bool:
        return self.num_given_up == len(self.worker_ids)

    def stop(self, timeout: float = 5.0) -> None:
        """Wait for the children to exit on their own, then terminate, then kill."""
        self._stopping = True
        for worker_id, to_worker in self._to_workers.items():  # still loading TensorFlow: nothing to lose
            to_worker.close()
            self.workers[worker_id].terminate()
        self._to_workers.clear()
        if self.http is not None:
            self.http.terminate()  # it holds no work of its own: its requests wait on the server
        processes = [p for p in (self.http, self.sink, *self.workers.values()) if p is not None]
        deadline = time.monotonic() + timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                self.logger.warning('%s did not stop in time, terminating it', process.name)
                process.terminate()
                process.join(2)
            if process.is_alive():
                process.kill()
                process.join(1)
