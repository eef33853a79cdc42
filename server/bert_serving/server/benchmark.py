"""bert-serving-benchmark: vary one parameter at a time against the common settings and print sentences/s.

Each server runs in a spawned process that leads its own session (so its memory can be summed over all
its processes); the clients are threads of this process. ``ServerProcess`` and ``measure_throughput``
are shared with the scripts in ``benchmarks/``.
"""
from __future__ import annotations

import copy
import csv
import json
import multiprocessing
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bert_serving.client import BertClient

from .args import get_benchmark_parser

EXPERIMENTS = ('client_batch_size', 'max_batch_size', 'max_seq_len', 'num_client', 'pooling_layer')
CLIENT_SIDE = ('client_batch_size', 'num_client')  # varying these needs no new server
WORDS_WHEN_DYNAMIC = 25  # sentence length in words when -max_seq_len is NONE
# Ports for servers to listen on: below the range the kernel picks the local ports of outgoing connections
# from (Linux: 32768-60999 by default; macOS, Windows: 49152 up). A port from that range can be taken by some
# connection between the moment it is found free and the moment the server binds it (seconds later, after
# the graph is built), and the server then stops with "Address already in use".
LISTEN_PORTS = range(20000, 32768)
_handed_out: set[int] = set()  # ports free_port returned: their callers bind them later, so never twice


def session_pids(session_id: int) -> list[int]:
    """Pids of every process in the session ``session_id`` (a server started as a session leader)."""
    pids = []
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session_id:
                    pids.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to look at
                continue
    return pids


def free_port() -> int:
    """A loopback TCP port nobody uses right now, from LISTEN_PORTS, and not one this process was given before:
    a server binds its ports seconds later, so two calls in a row must not return the same one."""
    tries = 100
    for port in random.sample(LISTEN_PORTS, tries):
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(('127.0.0.1', port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f'no free port among {tries} tried in {LISTEN_PORTS}')


def start_side_by_side(starters) -> list:
    """Call each of ``starters`` (each starts a server and returns it) in a thread of its own.

    Returns the servers in the order of ``starters``. When one fails, the servers that did start
    are stopped and its error is raised.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(starters)) as pool:
        starts = [pool.submit(starter) for starter in starters]
    errors = [start.exception() for start in starts if start.exception() is not None]
    servers = [start.result() for start in starts if start.exception() is None]
    if errors:
        for server in servers:
            server.stop()
        raise errors[0]
    return servers


def _serve(args, log_path: str) -> None:
    """Entry point of the server process: a session of its own, logs to a file, serve until SIGTERM."""
    os.setsid()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    from .server import BertServer

    server = BertServer(args)
    signal.signal(signal.SIGTERM, lambda *_: server.request_stop())
    server.start()
    while server.is_alive():
        server.join(0.5)


class ServerProcess:
    """A BertServer with ``args`` in a process of its own; the constructor returns once every worker is ready
    and its HTTP proxy (with ``-http_port``) answers."""

    def __init__(self, args, ready_timeout: float = 180, log_path: str | None = None):
        self.args = args
        self.ip = 'localhost' if args.bind in ('*', '0.0.0.0') else args.bind
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix='bert-benchmark-server-', suffix='.log')
            os.close(fd)
        self.log_path = log_path
        self.process = multiprocessing.get_context('spawn').Process(target=_serve, args=(args, log_path),
                                                                    name='bert-serving-benchmark-server')
        self.process.start()
        try:
            self._wait_until_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise

    def log_tail(self, chars: int = 4000) -> str:
        return Path(self.log_path).read_text(errors='replace')[-chars:]

    def client(self, **kwargs) -> BertClient:
        """A client of this server that skips the start-up checks (one per thread)."""
        kwargs.setdefault('timeout', 600_000)
        kwargs.setdefault('ignore_all_checks', True)
        return BertClient(ip=self.ip, port=self.args.port, port_out=self.args.port_out, **kwargs)

    def statistic(self) -> dict:
        """The ``statistic`` part of SHOW_STATUS."""
        with self.client(timeout=10_000) as client:
            return client.server_status['statistic']

    def _workers_ready(self) -> bool:
        try:
            return self.statistic()['num_ready_worker'] == self.args.num_worker
        except TimeoutError:
            return False

    def _proxy_answers(self) -> bool:
        """True once the HTTP proxy answers /health, or when the server runs none: it may start after the workers."""
        if getattr(self.args, 'http_port', None) is None:
            return True
        try:
            with urllib.request.urlopen(f'http://{self.ip}:{self.args.http_port}/health', timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.is_alive():
                raise RuntimeError(f'the server exited with {self.process.exitcode}; its log ends with:\n'
                                   f'{self.log_tail()}')
            if self._workers_ready() and self._proxy_answers():
                return
            time.sleep(0.5)
        raise RuntimeError(f'the server was not ready within {timeout} s; its log ends with:\n{self.log_tail()}')

    def pids(self) -> list[int]:
        """Every process of the server: the one started here and all its descendants (one session)."""
        return session_pids(self.process.pid)

    def memory_by_process(self) -> dict[int, dict]:
        """Resident memory of each of the server's processes, in bytes, by pid: ``rss`` (shared pages counted
        in each process) and ``pss`` (shared pages divided among the processes sharing them)."""
        sizes = {}
        for pid in self.pids():
            try:
                lines = Path(f'/proc/{pid}/smaps_rollup').read_text().splitlines()
            except OSError:
                continue
            fields = dict(line.split(':', 1) for line in lines[1:])
            sizes[pid] = {key: int(fields[name].split()[0]) * 1024 for key, name in (('rss', 'Rss'), ('pss', 'Pss'))}
        return sizes

    def memory(self) -> dict:
        """Resident memory of all the server's processes together, in bytes (``rss``, ``pss``), and their number."""
        sizes = self.memory_by_process().values()
        return {'rss': sum(size['rss'] for size in sizes), 'pss': sum(size['pss'] for size in sizes),
                'processes': len(sizes)}

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM (the server drains and stops its children); SIGKILL the whole session if that hangs."""
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.join(timeout)
        if self.process.is_alive() or self.pids():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@dataclass
class Throughput:
    """Sentences per second of all clients together, and of each client on its own."""
    sentences_per_s: float
    per_client: list[float]


def measure_throughput(server: ServerProcess, requests: list[list[list[str]]], connect=None) -> Throughput:
    """One client thread per list of requests: each sends its first request to warm up, then, all clients
    starting together, the others one after another; the timed rows are counted. ``connect()`` makes a
    thread's client (a context manager with ``encode(texts)``; default: a BertClient of ``server``)."""
    connect = connect or server.client
    started = threading.Barrier(len(requests) + 1)
    elapsed = [0.0] * len(requests)
    errors = []

    def client_loop(index, mine):
        try:
            with connect() as client:
                client.encode(mine[0])
                started.wait()
                begin = time.perf_counter()
                for batch in mine[1:]:
                    client.encode(batch)
                elapsed[index] = time.perf_counter() - begin
        except BaseException as error:  # report in the main thread; free the others from the barrier
            errors.append(error)
            started.abort()

    threads = [threading.Thread(target=client_loop, args=item, daemon=True) for item in enumerate(requests)]
    for thread in threads:
        thread.start()
    try:
        started.wait()
    except threading.BrokenBarrierError:
        pass
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - begin
    if errors:
        raise errors[0]
    rows = [sum(map(len, mine[1:])) for mine in requests]
    return Throughput(sum(rows) / wall, [n / t for n, t in zip(rows, elapsed)])


def load_words(path: str) -> list[str]:
    """The distinct whitespace-separated words of a text file, in first-seen order."""
    try:
        text = Path(path).read_text(encoding='utf-8', errors='replace')
    except OSError as error:
        raise ValueError(f'-client_vocab_file {path}: {error.strerror}') from None
    words = list(dict.fromkeys(text.split()))
    if not words:
        raise ValueError(f'-client_vocab_file {path} has no words')
    return words


def random_sentences(words: list[str], count: int, length: int, seed: int) -> list[str]:
    """``count`` sentences of ``length`` random words: at least ``length`` tokens, so they fill max_seq_len."""
    rng = random.Random(seed)
    return [' '.join(rng.choices(words, k=length)) for _ in range(count)]


def settings(args) -> list[tuple[str, object, object]]:
    """(parameter, value, the common settings with that one parameter changed) for every value to test."""
    out = []
    for parameter in EXPERIMENTS:
        for value in getattr(args, f'test_{parameter}'):
            changed = copy.copy(args)
            setattr(changed, parameter, [value] if parameter == 'pooling_layer' else value)
            out.append((parameter, value, changed))
    return out


def server_key(args) -> str:
    """What makes two settings need different servers: everything but the client-side parameters."""
    return repr(sorted((k, v) for k, v in vars(args).items() if k not in CLIENT_SIDE))


def run_benchmark(args, words: list[str]) -> list[dict]:
    """Measure every setting; settings that differ only on the client side share one server.

    Rows come back in experiment order, whatever order the servers ran in.
    """
    todo = settings(args)
    groups = {}
    for index, (_, _, current) in enumerate(todo):
        groups.setdefault(server_key(current), []).append(index)
    rows = [None] * len(todo)
    for indexes in groups.values():
        with ServerProcess(todo[indexes[0]][2], args.wait_till_ready) as server:
            for index in indexes:
                parameter, value, current = todo[index]
                length = current.max_seq_len or WORDS_WHEN_DYNAMIC
                batches = [random_sentences(words, current.client_batch_size, length, seed)
                           for seed in range(current.num_client)]
                speed = measure_throughput(server, [[batch] * (args.num_repeat + 1) for batch in batches])
                rows[index] = {'parameter': parameter, 'value': value, 'sentences_per_s': speed.sentences_per_s,
                               'per_client_avg': sum(speed.per_client) / len(speed.per_client),
                               'per_client_min': min(speed.per_client), 'per_client_max': max(speed.per_client)}
                print(f'{parameter}={value}: {speed.sentences_per_s:.0f} sentences/s', file=sys.stderr, flush=True)
    return rows


def format_table(parameter: str, rows: list[dict]) -> str:
    """A Markdown table like the seed's, plus each client's speed."""
    lines = [f'|`{parameter}`|sentences/s|per client avg|per client min|per client max|', '|---|---|---|---|---|']
    lines += [f'|{r["value"]}|{r["sentences_per_s"]:.0f}|{r["per_client_avg"]:.0f}|{r["per_client_min"]:.0f}|'
              f'{r["per_client_max"]:.0f}|' for r in rows]
    return '\n'.join(lines)


def common_settings(args) -> dict:
    """The settings every experiment starts from, for the output files."""
    names = ('client_batch_size', 'num_client', 'max_batch_size', 'max_seq_len', 'pooling_layer',
             'pooling_strategy', 'num_worker', 'num_repeat', 'cpu', 'fp16', 'xla', 'model_dir')
    values = {name: getattr(args, name) for name in names}
    values['pooling_strategy'] = values['pooling_strategy'].name
    return values


def write_outputs(args, rows: list[dict]) -> None:
    if args.output_json:
        with open(args.output_json, 'w') as f:
            json.dump({'common': common_settings(args), 'results': rows}, f, indent=2)
    if args.output_csv:
        with open(args.output_csv, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if args.output_png:
        plot(rows, args.output_png)


def plot(rows: list[dict], path: str) -> None:
    """One bar chart of sentences/s per parameter."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit('-output_png needs matplotlib: pip install "bert-serving-server[benchmark]"') from None
    matplotlib.use('Agg')
    from matplotlib import pyplot

    parameters = list(dict.fromkeys(r['parameter'] for r in rows))
    figure, axes = pyplot.subplots(len(parameters), 1, figsize=(6, 2.6 * len(parameters)), squeeze=False)
    for axis, parameter in zip(axes[:, 0], parameters):
        mine = [r for r in rows if r['parameter'] == parameter]
        axis.bar([str(r['value']) for r in mine], [r['sentences_per_s'] for r in mine], color='#4c72b0')
        axis.set_xlabel(parameter)
        axis.set_ylabel('sentences/s')
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv=None) -> int:
    parser = get_benchmark_parser()
    args = parser.parse_args(argv)
    try:
        words = load_words(args.client_vocab_file)
    except ValueError as error:
        parser.error(str(error))
    try:
        rows = run_benchmark(args, words)
    except RuntimeError as error:  # a server that did not start: its log says why
        print(f'{parser.prog}: {error}', file=sys.stderr)
        return 1
    if not rows:
        print('nothing to measure: every -test_* list is empty', file=sys.stderr)
        return 1
    for parameter in dict.fromkeys(r['parameter'] for r in rows):
        print(f'\n{format_table(parameter, [r for r in rows if r["parameter"] == parameter])}')
    write_outputs(args, rows)
    return 0
