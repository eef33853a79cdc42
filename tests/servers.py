"""Run the real `bert-serving-start` command in a subprocess for end-to-end tests."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bert_serving.client import BertClient
from bert_serving.server.benchmark import free_port, session_pids

BIN = Path(sys.executable).parent


class ServerProcess:
    """A server started with the CLI on free loopback ports; its log is kept for failure messages.

    ``bind`` and ``ports`` (port, port_out) place it elsewhere, e.g. on 127.0.0.2 with another's ports.
    """

    def __init__(self, model_dir, *options, num_worker=1, log_dir=None, ready_timeout=180, probe_keys=None,
                 bind='127.0.0.1', ports=None):
        self.port, self.port_out = ports or (free_port(), free_port())
        self.bind = bind
        self.num_worker = num_worker
        self.probe_keys = probe_keys or {}  # CurveZMQ keys of the readiness probe
        self.command = [str(BIN / 'bert-serving-start'), '-model_dir', str(model_dir), '-port', str(self.port),
                        '-port_out', str(self.port_out), '-num_worker', str(num_worker), '-cpu',
                        '-bind', bind, *map(str, options)]
        self.log_path = Path(log_dir or '/tmp') / f'server-{bind}-{self.port}.log'
        self._log = open(self.log_path, 'wb')
        self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self._wait_until_ready(ready_timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def client(self, **kwargs) -> BertClient:
        kwargs.setdefault('timeout', 60_000)
        return BertClient(ip=self.bind, port=self.port, port_out=self.port_out, **kwargs)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'server exited with {self.process.returncode}:\n{self.log()}')
            try:
                with self.client(ignore_all_checks=True, timeout=1000, **self.probe_keys) as probe:
                    status = probe.server_status['statistic']
                if status['num_ready_worker'] == self.num_worker:
                    return
            except TimeoutError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f'server not ready within {timeout} s:\n{self.log()}')

    def child_pids(self) -> list[int]:
        """Pids of every process in the server's session (the CLI process and its children)."""
        return session_pids(self.process.pid)

    def wait_for_no_processes(self, timeout: float = 5) -> list[int]:
        """Wait until every process of the server's session has exited; returns those still there."""
        wait_until(lambda: not self.child_pids(), timeout)
        return self.child_pids()

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError(f'server did not stop within {timeout} s:\n{self.log()}')
        self._log.close()
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def worker_pids(client) -> dict[int, int]:
    """Worker id -> pid of its current process, as the server reports it."""
    return {worker['id']: worker['pid'] for worker in client.server_status['statistic']['workers']}


def batches_held(client) -> dict[int, int]:
    """Worker id -> batches the ventilator handed to it that are not done yet."""
    return {worker['id']: worker['in_flight'] for worker in client.server_status['statistic']['workers']}


def wait_until(condition, timeout: float = 60) -> bool:
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextlib.contextmanager
def frozen(pids):
    """Stop processes (SIGSTOP) so that batches sent to them stay theirs; let the survivors go on after."""
    pids = list(pids)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
