"""Shared pieces of the stress scripts: a server to test, sentences, and memory readings.

Every script runs on loopback only, bounds its loops by count and time, and stops by itself.
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bert_serving.client import BertClient

BIN = Path(sys.executable).parent
WORDS = ('the quick brown fox jumps over lazy dog hello world first do it then right better good day '
         'sentence encoding maps text to vectors with bert served over sockets').split()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('-model_dir', default='models/minilm', help='model to serve')
    parser.add_argument('-num_worker', type=int, default=2)
    parser.add_argument('-server_option', action='append', default=[],
                        help='extra bert-serving-start option, e.g. -server_option=-max_batch_size=64')
    return parser


class Server:
    """`bert-serving-start` on free loopback ports, in its own process group."""

    def __init__(self, model_dir: str, num_worker: int, extra: list[str], log_path: str):
        self.port, self.port_out = free_port(), free_port()
        options = [part for option in extra for part in option.split('=', 1)]
        command = [str(BIN / 'bert-serving-start'), '-model_dir', model_dir, '-num_worker', str(num_worker),
                   '-port', str(self.port), '-port_out', str(self.port_out), '-bind', '127.0.0.1', '-cpu', *options]
        self.log = open(log_path, 'wb')
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_until_ready(num_worker)

    def client(self, **kwargs) -> BertClient:
        kwargs.setdefault('timeout', 120_000)
        kwargs.setdefault('check_length', False)
        return BertClient(port=self.port, port_out=self.port_out, **kwargs)

    def _wait_until_ready(self, num_worker: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'the server exited with code {self.process.returncode}; see {self.log.name}')
            try:
                with self.client(ignore_all_checks=True, timeout=1000) as probe:
                    if probe.server_status['statistic']['num_ready_worker'] == num_worker:
                        return
            except TimeoutError:
                time.sleep(0.5)
        raise RuntimeError(f'the server was not ready within {timeout} s; see {self.log.name}')

    def rss_mb(self) -> float:
        """Resident memory of the server's processes together, in MiB."""
        total = 0
        for entry in Path('/proc').iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) != self.process.pid:
                        continue
                    for line in (entry / 'status').read_text().splitlines():
                        if line.startswith('VmRSS:'):
                            total += int(line.split()[1])
                except (OSError, ValueError):
                    continue
        return total / 1024

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(30)
        finally:
            self.log.close()


def random_sentences(rng: np.random.Generator, count: int) -> list[str]:
    return [' '.join(rng.choice(WORDS, size=int(rng.integers(1, 30)))) for _ in range(count)]
