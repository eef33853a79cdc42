"""The CPU image itself, run with buildah: `make image-test` builds it (root, minutes) and runs this file.

Its own entrypoint, with the packaged MiniLM mounted at /model, serves inside a container; the host encodes
with BertClient and over HTTP, the image's HEALTHCHECK command runs inside, and SIGTERM drains and exits 0.
Without BERT_SERVING_IMAGE (the image's name, which make image-test sets) every test here skips.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from bert_serving.client import BertClient
from bert_serving.server.benchmark import free_port, session_pids

IMAGE = os.environ.get('BERT_SERVING_IMAGE')
K8S = Path(__file__).resolve().parents[1] / 'docker' / 'k8s'
MODEL_DIR = Path(__file__).resolve().parents[1] / 'models' / 'minilm'  # make model writes it
MAX_SEQ_LEN = 25  # the golden vectors' length
TOLERANCE = 1e-4

pytestmark = pytest.mark.slow
if not IMAGE:
    pytest.skip('make image-test builds the image and runs these tests', allow_module_level=True)
if shutil.which('buildah') is None or os.geteuid() != 0:
    pytest.skip('running an image here takes buildah and root', allow_module_level=True)


def image_config() -> dict:
    """The image's Docker config: Entrypoint, Cmd, Healthcheck, User (buildah keeps them in docker format)."""
    reply = subprocess.run(['buildah', 'inspect', '--type', 'image', IMAGE], capture_output=True, text=True,
                           check=True)
    return json.loads(reply.stdout)['Docker']['config']


class Container:
    """A working container of the image whose entrypoint serves on free loopback ports (host network)."""

    def __init__(self, log_path: Path):
        self.config = image_config()
        self.name = subprocess.run(['buildah', 'from', IMAGE], capture_output=True, text=True,
                                   check=True).stdout.strip()
        self.port, self.port_out, self.http_port = free_port(), free_port(), free_port()
        self.log_path = log_path
        options = ['-max_seq_len', MAX_SEQ_LEN, '-port', self.port, '-port_out', self.port_out, '-bind', '127.0.0.1']
        command = self.run_command(['-v', f'{MODEL_DIR.resolve()}:/model:ro'], [*self.config['Entrypoint'], '1'])
        with open(log_path, 'wb') as log:
            self.process = subprocess.Popen(command + list(map(str, options)), stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def run_command(self, run_options: list[str], command: list[str], http_port: int | None = None) -> list[str]:
        """``buildah run`` of ``command`` in this container, its HTTP port in the environment."""
        return ['buildah', 'run', '--isolation', 'chroot', '-e',
                f'BERT_SERVING_HTTP_PORT={http_port or self.http_port}', *run_options, self.name, '--', *command]

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def wait_until_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f'the container exited with {self.process.returncode}:\n{self.log()}'
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{self.http_port}/ready', timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(1)
        raise AssertionError(f'/ready did not answer 200 within {timeout} s:\n{self.log()}')

    def main_pid(self) -> int:
        """The container's first process (the entrypoint, which execs bert-serving-start): what an engine signals.
        buildah run itself does not pass SIGTERM on, so the test signals this one."""
        for pid in session_pids(self.process.pid):
            try:
                parent = int(Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[1])
                if Path(f'/proc/{parent}/cmdline').read_bytes().startswith(b'buildah-chroot-exec\0'):
                    return pid
            except (OSError, ValueError, IndexError):
                continue
        raise AssertionError('no process runs in the container')

    def remove(self) -> None:
        for pid in session_pids(self.process.pid):  # buildah and everything in the container
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        subprocess.run(['buildah', 'rm', self.name], capture_output=True)


@pytest.fixture(scope='module')
def container(tmp_path_factory):
    assert (MODEL_DIR / 'config.json').exists(), f'no model at {MODEL_DIR}: make model writes it'
    served = Container(tmp_path_factory.mktemp('image') / 'container.log')
    try:
        served.wait_until_ready()
        yield served
    finally:
        served.remove()


def client(container, **options) -> BertClient:
    # The golden sentences include longer ones, cut at 25 tokens as the golden vectors were.
    return BertClient(port=container.port, port_out=container.port_out, timeout=60_000, check_length=False, **options)


def test_runs_as_the_image_user_without_root(container):
    reply = subprocess.run(container.run_command([], ['id', '-u']), capture_output=True, text=True, timeout=60)
    assert reply.stdout.strip() == container.config['User'] == '10001', reply.stderr


def test_encodes_from_the_host_as_the_golden_vectors(container, golden):
    texts = list(golden['texts'])
    with client(container) as bc:
        config = bc.server_config
        vectors = bc.encode(texts)
    assert config['model_dir'] == '/model' and config['cpu'] is True and config['max_seq_len'] == MAX_SEQ_LEN
    np.testing.assert_allclose(vectors, golden['REDUCE_MEAN__-2'], atol=TOLERANCE)


def test_http_encodes_the_same(container, golden):
    texts = list(golden['texts'][:8])
    request = urllib.request.Request(f'http://127.0.0.1:{container.http_port}/encode',
                                     data=json.dumps({'id': 7, 'texts': texts}).encode(),
                                     headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=60) as reply:
        body = json.loads(reply.read())
    assert body['id'] == 7 and body['status'] == 200
    np.testing.assert_allclose(np.array(body['result']), golden['REDUCE_MEAN__-2'][:8], atol=TOLERANCE)


def test_metrics_show_the_gauge_the_queue_depth_autoscaler_reads(container):
    patch = yaml.safe_load((K8S / 'queue-depth' / 'queue-depth.yaml').read_text())
    gauge = patch['spec']['metrics'][0]['pods']['metric']['name']
    with urllib.request.urlopen(f'http://127.0.0.1:{container.http_port}/metrics', timeout=30) as reply:
        metrics = reply.read().decode()
    assert f'# TYPE {gauge} gauge' in metrics
    assert re.search(rf'^{gauge} \d', metrics, flags=re.MULTILINE), metrics


def test_healthcheck_command_passes_inside_and_fails_on_a_silent_port(container):
    check = container.config['Healthcheck']['Test']
    assert check[0] == 'CMD'
    healthy = subprocess.run(container.run_command([], check[1:]), capture_output=True, text=True, timeout=60)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    silent = subprocess.run(container.run_command([], check[1:], http_port=free_port()), capture_output=True,
                            timeout=60)
    assert silent.returncode != 0


def test_sigterm_drains_accepted_requests_and_exits_zero(container, golden):
    """Last: it stops the container. Requests queued when SIGTERM comes are all answered, then it exits 0."""
    texts, expected = list(golden['texts']) * 2, np.tile(golden['REDUCE_MEAN__-2'], (2, 1))
    main_pid = container.main_pid()
    with client(container) as bc:
        for _ in range(8):  # 320 sentences: under a second of work, well inside the server's 5 s drain
            bc.encode(texts, blocking=False)
        bc.server_status  # on the same socket, after the eight: once it answers, the server holds them all
        os.kill(main_pid, signal.SIGTERM)
        results = bc.fetch_all(sort=True, concat=True)
    np.testing.assert_allclose(results, np.tile(expected, (8, 1)), atol=TOLERANCE)
    assert container.process.wait(timeout=60) == 0, container.log()
    assert re.search(r'finishing \d+ queued rows and the running batches before stopping', container.log()), \
        'the work was done before SIGTERM came: nothing was left to drain'
