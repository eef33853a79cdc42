"""Shared pieces of the stress scripts: a server to test, sentences, and memory readings.

Every script runs on loopback only, bounds its loops by count and time, and stops by itself.
"""

import argparse

import numpy as np

from bert_serving.server import get_args_parser
from bert_serving.server.benchmark import ServerProcess, free_port

WORDS = ('the quick brown fox jumps over lazy dog hello world first do it then right better good day '
         'sentence encoding maps text to vectors with bert served over sockets').split()


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('-model_dir', default='models/minilm', help='model to serve')
    parser.add_argument('-num_worker', type=int, default=2)
    parser.add_argument('-server_option', action='append', default=[],
                        help='extra bert-serving-start option, e.g. -server_option=-max_batch_size=64')
    return parser


class Server(ServerProcess):
    """A server on free loopback ports, on the CPU; the constructor returns once it is ready."""

    def __init__(self, model_dir: str, num_worker: int, extra: list[str], log_path: str):
        options = [part for option in extra for part in option.split('=', 1)]
        args = get_args_parser().parse_args([
            '-model_dir', model_dir, '-num_worker', str(num_worker), '-port', str(free_port()),
            '-port_out', str(free_port()), '-bind', '127.0.0.1', '-cpu', *options])
        super().__init__(args, ready_timeout=300, log_path=log_path)

    def client(self, **kwargs):
        kwargs.setdefault('timeout', 120_000)
        kwargs.setdefault('check_length', False)
        return super().client(**kwargs)

    def rss_mb(self) -> float:
        """Resident memory of the server's processes together, in MiB."""
        return self.memory()['rss'] / 2 ** 20

    def rss_by_process_mb(self) -> dict[int, float]:
        """Resident memory of each of the server's processes, in MiB, by pid."""
        return {pid: size['rss'] / 2 ** 20 for pid, size in self.memory_by_process().items()}

    @property
    def exited(self) -> bool:
        return not self.process.is_alive()


def random_sentences(rng: np.random.Generator, count: int) -> list[str]:
    return [' '.join(rng.choice(WORDS, size=int(rng.integers(1, 30)))) for _ in range(count)]
