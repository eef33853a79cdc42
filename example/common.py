"""What the numbered examples share: their options, a server to talk to, and the bundled data set.

Every example either starts its own server on free local ports (and stops it at the end), or,
given ``-port``/``-port_out``, uses one that is already running::

    python example/1_simple_encode.py                        # starts a server on models/minilm
    python example/1_simple_encode.py -port 5555 -port_out 5556
"""

import argparse
import contextlib
import csv
from dataclasses import dataclass
from pathlib import Path

from bert_serving.client import BertClient, ConcurrentBertClient

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / 'models' / 'minilm'
TOPICS = Path(__file__).resolve().parent / 'data' / 'topics.tsv'


def example_parser(doc: str, quick: str | None = None) -> argparse.ArgumentParser:
    """The options of every example; ``quick`` describes what ``--quick`` cuts short, if it has one."""
    title, _, details = doc.partition('\n')
    parser = argparse.ArgumentParser(description=title, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-model_dir', default=str(DEFAULT_MODEL),
                        help='model of the server this example starts (default: %(default)s)')
    parser.add_argument('-num_worker', type=int, default=1, help='workers of that server')
    parser.add_argument('-ip', default='localhost', help='host of a running server (with -port)')
    parser.add_argument('-port', type=int, help='use the running server with this port instead of starting one')
    parser.add_argument('-port_out', type=int, help='its result port (default: -port + 1)')
    if quick:
        parser.add_argument('--quick', action='store_true', help=quick)
    return parser


@dataclass(frozen=True)
class Server:
    """Where a server listens; ``client()`` opens a BertClient to it, ``pool()`` a ConcurrentBertClient."""
    ip: str
    port: int
    port_out: int

    def client(self, **kwargs) -> BertClient:
        kwargs.setdefault('timeout', 60_000)  # fail with a hint rather than hang if the server died
        return BertClient(ip=self.ip, port=self.port, port_out=self.port_out, **kwargs)

    def pool(self, max_concurrency: int) -> ConcurrentBertClient:
        return ConcurrentBertClient(max_concurrency, ip=self.ip, port=self.port, port_out=self.port_out,
                                    timeout=60_000)


@contextlib.contextmanager
def bert_server(options, *server_options: str, reuse: bool = True):
    """Yield a Server: the running one of ``-port`` when given (and ``reuse``), else one started here.

    The server started here runs ``server_options`` on ``-model_dir`` with ``-num_worker`` workers,
    on two free loopback ports, and stops when the block ends.
    """
    if reuse and options.port:
        yield Server(options.ip, options.port, options.port_out or options.port + 1)
        return
    from bert_serving.server import BertServer, get_args_parser  # TensorFlow: only when serving here
    from bert_serving.server.benchmark import free_port

    if not Path(options.model_dir).is_dir():
        raise SystemExit(f'no model at {options.model_dir}: run `make model` first, or pass -model_dir')
    port, port_out = free_port(), free_port()
    args = get_args_parser().parse_args([
        '-model_dir', str(options.model_dir), '-num_worker', str(options.num_worker),
        '-port', str(port), '-port_out', str(port_out), '-bind', '127.0.0.1', *server_options])
    print(f'starting a server on {options.model_dir} (ports {port}/{port_out}) {" ".join(server_options)}',
          flush=True)
    with BertServer(args):
        yield Server('localhost', port, port_out)


def load_topics() -> tuple[list[str], list[str]]:
    """The bundled data set: 240 sentences, each labelled sports, food, technology or weather."""
    with open(TOPICS, newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f, delimiter='\t'))
    return [row['sentence'] for row in rows], [row['label'] for row in rows]
