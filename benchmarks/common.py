"""What the benchmark scripts share: natural sentences, servers, in-process encoders, timing, the report table."""
from __future__ import annotations

import http.client
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_VENV = REPO / '.venv-bench'
BENCH_PYTHON = BENCH_VENV / 'bin' / 'python'
BENCH_SETUP = 'python3 -m venv .venv-bench && .venv-bench/bin/pip install -r benchmarks/requirements-bench.txt'


def natural_sentences() -> list[str]:
    """Distinct prose sentences of the Python language reference that ships with CPython (``pydoc_data``).

    Real English of mixed lengths (4 to 80 words); code samples, lists and headings are left out.
    """
    from pydoc_data.topics import topics

    paragraphs, current = [], []
    markup = ('*', '-', '>>>', '...', '|', '+', '=')
    for line in '\n'.join(topics.values()).split('\n'):
        text = line.strip()
        prose = text and not line.startswith((' ', '\t')) and not text.startswith(markup)
        if prose and not re.fullmatch(r'[=\-~*^"]+', text):
            current.append(text)
        elif current:
            paragraphs.append(' '.join(current))
            current = []
    paragraphs.append(' '.join(current))
    sentences = [s for p in paragraphs for s in re.split(r'(?<=[.!?])\s+(?=[A-Z])', p)
                 if 4 <= len(s.split()) <= 80 and s[0].isupper() and s[-1] in '.!?']
    return list(dict.fromkeys(sentences))


def take(sentences: list[str], count: int) -> list[str]:
    """``count`` sentences, going round the list again when it is shorter."""
    return [sentences[i % len(sentences)] for i in range(count)]


def start_server(model_dir, *options, num_worker: int = 1, cpu: bool = True, bind: str = '127.0.0.1', ports=None):
    """A ServerProcess on free loopback ports (the same helper bert-serving-benchmark uses).

    ``bind`` and ``ports`` (port, port_out) place it elsewhere, e.g. on 127.0.0.2 with another's ports.
    """
    from bert_serving.server import get_args_parser
    from bert_serving.server.benchmark import ServerProcess, free_port

    port, port_out = ports or (free_port(), free_port())
    argv = ['-model_dir', str(model_dir), '-port', str(port), '-port_out', str(port_out),
            '-bind', bind, '-num_worker', str(num_worker), *(['-cpu'] if cpu else []), *map(str, options)]
    return ServerProcess(get_args_parser().parse_args(argv))


def build_graph(model_dir, graph_dir, layers=(-2,)) -> str:
    """The frozen REDUCE_MEAN graph of the model, as the server builds it."""
    from bert_serving.server.model.checkpoint import locate_model
    from bert_serving.server.model.graph import GraphOptions, build_frozen_graph

    return build_frozen_graph(locate_model(model_dir), GraphOptions(pooling_layer=tuple(layers)), str(graph_dir))


def in_process_encoder(graph_path, model_dir, max_seq_len: int):
    """A SentenceEncoder on the CPU: what an application embedding the model would call."""
    from bert_serving.server.model.checkpoint import load_config, locate_model
    from bert_serving.server.model.encoder import SentenceEncoder

    files = locate_model(model_dir)
    return SentenceEncoder(graph_path, files.vocab_path, max_seq_len,
                           model_max_len=load_config(files).max_position_embeddings)


class HttpEncoder:
    """``encode(texts)`` through the HTTP proxy on one keep-alive connection: POST /encode or /v1/embeddings,
    the answer parsed with the standard json module (what a plain Python client does) into float32 rows."""

    def __init__(self, port: int, path: str):
        self.path = path
        self.connection = http.client.HTTPConnection('127.0.0.1', port, timeout=600)

    def encode(self, texts: list[str]):
        import numpy as np

        body = {'texts': texts} if self.path == '/encode' else {'input': texts}
        self.connection.request('POST', self.path, json.dumps(body), {'Content-Type': 'application/json'})
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f'POST {self.path} answered {response.status}: {answer}')
        rows = answer['result'] if self.path == '/encode' else [item['embedding'] for item in answer['data']]
        return np.array(rows, dtype=np.float32)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.connection.close()


def best_seconds(functions, repeat: int, clock=time.perf_counter) -> list[float]:
    """Shortest time of each function over ``repeat`` rounds that call them in turn: the least disturbed
    run of each, with a disturbance from other programs as likely to hit one as the other. ``clock``:
    wall time, or ``time.process_time`` for this process's CPU seconds (what other programs disturb least)."""
    best = [float('inf')] * len(functions)
    for _ in range(repeat):
        for index, function in enumerate(functions):
            start = clock()
            function()
            best[index] = min(best[index], clock() - start)
    return best


def latencies_ms(functions, items) -> list[list[float]]:
    """Wall time in milliseconds of each function on each item, the functions called in turn per item."""
    out = [[] for _ in functions]
    for item in items:
        for times, function in zip(out, functions):
            start = time.perf_counter()
            function(item)
            times.append((time.perf_counter() - start) * 1000)
    return out


def percentile(values, q: float) -> float:
    return statistics.quantiles(values, n=100, method='inclusive')[q - 1] if len(values) > 1 else values[0]


def run_json(python, script: str, *args) -> dict:
    """Run a script of this folder with another Python and return the JSON object it prints last."""
    completed = subprocess.run(_script_command(python, script, args), capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f'{script} failed ({completed.returncode}):\n{completed.stderr[-3000:]}')
    return json.loads(completed.stdout.strip().splitlines()[-1])


class ScriptSession:
    """A script of this folder run with another Python, that answers each command line with a JSON line."""

    def __init__(self, python, script: str, *args):
        self.script = script
        self.errors = tempfile.TemporaryFile('w+')
        self.process = subprocess.Popen(_script_command(python, script, args), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.errors, text=True)

    def read(self) -> dict:
        """The next JSON line the script prints."""
        for line in self.process.stdout:
            if line.startswith('{'):
                return json.loads(line)
        self.process.wait()
        self.errors.seek(0)
        raise RuntimeError(f'{self.script} ended ({self.process.returncode}):\n{self.errors.read()[-3000:]}')

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + '\n')
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        """End the script's input and wait for it to finish."""
        self.process.stdin.close()
        if self.process.wait() != 0:
            self.errors.seek(0)
            raise RuntimeError(f'{self.script} failed ({self.process.returncode}):\n{self.errors.read()[-3000:]}')
        self.errors.close()


def _script_command(python, script, args) -> list[str]:
    return [str(python), str(REPO / 'benchmarks' / script), *map(str, args)]


@dataclass
class Row:
    """One line of the report: what was measured, against what, and the goal."""
    name: str
    ours: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None  # None: nothing to meet (a figure to report) or not run

    def as_dict(self) -> dict:
        return dict(vars(self))


def print_report(rows: list[Row], load: str) -> None:
    print(f'\nmachine load while measuring: {load}\n')
    print('| benchmark | ours | baseline | ratio | goal | met |')
    print('|---|---|---|---|---|---|')
    for row in rows:
        met = '—' if row.met is None else ('yes' if row.met else 'NO')
        print(f'| {row.name} | {row.ours} | {row.baseline} | {row.ratio} | {row.goal} | {met} |')
    sys.stdout.flush()


def report(rows: list[Row], load_before: str, output_json=None) -> None:
    """Print the table with the machine load before and after; with ``output_json``, write the rows there too."""
    load = f'{load_before} before, {load_average()} after'
    print_report(rows, load)
    if output_json:
        Path(output_json).write_text(json.dumps({'load': load, 'rows': [row.as_dict() for row in rows]}, indent=2))


def load_average() -> str:
    with open('/proc/loadavg') as f:
        one, five, fifteen = f.read().split()[:3]
    return f'load average {one} / {five} / {fifteen} (1 / 5 / 15 min)'
