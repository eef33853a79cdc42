"""bert-serving-encode end to end on a real two-node Ray cluster on loopback (one CPU per node).

One cluster and one reference server serve the whole module: every run is checked row by row against
``BertClient.encode`` of a running bert-serving-start with the same options, within 1e-5.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip('pyarrow', reason='the bulk extra: pip install "bert-serving-server[bulk]"')
pytest.importorskip('ray.data', reason='the bulk extra: pip install "bert-serving-server[bulk]"')
from pyarrow import parquet  # noqa: E402
from servers import ServerProcess, free_port  # noqa: E402

from bert_serving.server.benchmark import session_pids  # noqa: E402

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
OPTIONS = ['-max_seq_len', '32', '-pooling_layer', '-1']
WORDS = 'the quick brown fox jumps over lazy dog hello world sentence encoding maps text to vectors'.split()


def ray_env() -> dict:
    """The environment of Ray's commands here: the loopback cluster asks for no token."""
    return {**os.environ, 'RAY_AUTH_MODE': 'disabled'}


class RayCluster:
    """A head and one worker node on 127.0.0.1, one CPU each, in sessions of their own (stopped by pid)."""

    def __init__(self, root: Path):
        self.temp_dir = Path(tempfile.mkdtemp(prefix='rb-', dir='/tmp'))  # Ray's socket paths must stay short
        self.port = free_port()
        self.address = f'127.0.0.1:{self.port}'
        self.log = root / 'ray.log'
        self.nodes = []
        try:
            self.nodes.append(self._start('--head', '--port', self.port, '--include-dashboard=false',
                                          '--ray-client-server-port', free_port(), '--temp-dir', self.temp_dir))
            self._wait_for_nodes(1)
            self.nodes.append(self._start('--address', self.address))
            self._wait_for_nodes(2)
        except BaseException:
            self.stop()
            raise

    def _start(self, *role) -> subprocess.Popen:
        command = [BIN / 'ray', 'start', '--block', '--num-cpus', 1, '--object-store-memory', 80 << 20,
                   '--node-ip-address', '127.0.0.1', '--disable-usage-stats', *role,
                   '--node-manager-port', free_port(), '--object-manager-port', free_port(),
                   '--metrics-export-port', free_port(), '--runtime-env-agent-port', free_port(),
                   '--dashboard-agent-listen-port', free_port(), '--dashboard-agent-grpc-port', free_port()]
        with open(self.log, 'ab') as log:
            return subprocess.Popen([str(part) for part in command], stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=ray_env())

    def _wait_for_nodes(self, count: int) -> None:
        """Until ``count`` nodes are alive; a node that exits, or 120 s, is an error naming the log.

        Each look is a process of its own with a time limit: ray.init retries forever when no head answers.
        """
        script = ('import ray; ray.init(address="%s", logging_level="ERROR"); '
                  'print(sum(n["Alive"] for n in ray.nodes()))' % self.address)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for role, node in zip(('head', 'worker'), self.nodes):
                if node.poll() is not None:
                    raise RuntimeError(f'the {role} node exited:\n{self.log.read_text()[-3000:]}')
            try:
                result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=30,
                                        env=ray_env())
            except subprocess.TimeoutExpired:
                continue
            if result.stdout.strip() == str(count):
                return
            time.sleep(1)
        raise RuntimeError(f'{count} Ray nodes not up in 120 s:\n{self.log.read_text()[-3000:]}')

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                node.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for node in self.nodes:  # whatever the node left behind, in its session only
            for pid in session_pids(node.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    """The cluster; started a second time, on other ports, when the first start fails.

    A port found free can be taken before Ray binds it (by another test process, or by Ray itself).
    """
    root = tmp_path_factory.mktemp('ray')
    try:
        ray_cluster = RayCluster(root)
    except RuntimeError as first:
        print(f'the first Ray cluster did not start; starting another: {first}', file=sys.stderr)
        ray_cluster = RayCluster(root)
    yield ray_cluster
    ray_cluster.stop()


def sentence(index: int) -> str:
    """A distinct sentence of 3 to 40 words for every index."""
    rng = np.random.default_rng(index)
    return ' '.join(rng.choice(WORDS, rng.integers(3, 41))) + f' {index}'


@pytest.fixture(scope='module')
def corpus(tmp_path_factory) -> dict:
    """3000 sentences in four files, one per format; the JSONL file also holds two bad rows.

    Returns {id: text} of every good row and the list of bad rows.
    """
    root = tmp_path_factory.mktemp('corpus')
    texts = [sentence(i) for i in range(3000)]
    expected = {}
    (root / 'a.txt').write_text(''.join(f'{t}\n' for t in texts[:1200]))
    expected.update({f'a.txt:{row}': t for row, t in enumerate(texts[:1200])})
    jsonl = [{'text': t} for t in texts[1200:1800]]
    jsonl[10:10] = [{'text': ''}, {'text': 42}]  # rows 10 and 11 are bad
    (root / 'b.jsonl').write_text(''.join(json.dumps(record) + '\n' for record in jsonl))
    expected.update({f'b.jsonl:{row}': r['text'] for row, r in enumerate(jsonl) if row not in (10, 11)})
    parquet.write_table(pa.table({'text': texts[1800:2400]}), root / 'c.parquet')
    expected.update({f'c.parquet:{row}': t for row, t in enumerate(texts[1800:2400])})
    with open(root / 'd.csv', 'w', newline='') as f:
        import csv
        writer = csv.writer(f)
        writer.writerow(['text', 'lang'])
        writer.writerows([t, 'en'] for t in texts[2400:])
    expected.update({f'd.csv:{row}': t for row, t in enumerate(texts[2400:])})
    return {'root': root, 'expected': expected, 'bad': [('b.jsonl', 10), ('b.jsonl', 11)]}


@pytest.fixture(scope='module')
def reference(tiny_model_dirs, corpus, tmp_path_factory) -> dict:
    """{text: vector} from BertClient.encode against bert-serving-start with the same options."""
    texts = list(corpus['expected'].values())
    with ServerProcess(tiny_model_dirs['hf'], *OPTIONS, log_dir=tmp_path_factory.mktemp('server')) as server:
        with server.client(check_length=False) as client:  # the long ones are cut on both sides
            vectors = np.concatenate([client.encode(texts[i:i + 256]) for i in range(0, len(texts), 256)])
    return dict(zip(texts, vectors))


def encode_command(model_dir, corpus, output: Path, *extra) -> list[str]:
    return [str(BIN / 'bert-serving-encode'), '-model_dir', str(model_dir), '-input', f'{corpus["root"]}/*',
            '-output_dir', str(output), '-rows_per_part', '150', '-num_workers', '2', '-skip_bad_rows',
            *OPTIONS, *map(str, extra)]


def start(command, cluster, log: Path) -> subprocess.Popen:
    return subprocess.Popen([*command, '-ray_address', cluster.address], stdout=open(log, 'wb'),
                            stderr=subprocess.STDOUT, env=ray_env(), start_new_session=True)


def finish(process: subprocess.Popen, log: Path, timeout: float = 150) -> str:
    process.wait(timeout)
    text = log.read_text(errors='replace')
    assert process.returncode == 0, f'bert-serving-encode exited with {process.returncode}:\n{text[-4000:]}'
    return text


def parts_of(output: Path) -> dict[str, dict]:
    """Each part's metadata by file name."""
    return {p.name: json.loads(parquet.read_metadata(p).metadata[b'bert_serving'])
            for p in sorted(output.glob('part-*.parquet'))}


def check_output(output: Path, corpus: dict, reference: dict) -> dict:
    """Every good row once, under its id, with its text and the server's vector; returns the manifest."""
    table = parquet.read_table(output)  # the whole folder, as any Parquet reader sees it
    ids = table.column('id').to_pylist()
    assert len(ids) == len(set(ids)) == len(corpus['expected'])
    assert set(ids) == set(corpus['expected'])
    texts = table.column('text').to_pylist()
    assert all(corpus['expected'][i] == t for i, t in zip(ids, texts))
    assert table.schema.field('embedding').type == pa.list_(pa.float32(), 32)
    vectors = table.column('embedding').combine_chunks().flatten().to_numpy().reshape(len(ids), 32)
    np.testing.assert_allclose(vectors, np.stack([reference[t] for t in texts]), atol=1e-5)
    manifest = json.loads((output / '_manifest.json').read_text())
    assert manifest['status'] == 'complete' and manifest['rows'] == len(ids) and manifest['dim'] == 32
    assert [(Path(bad['file']).name, bad['row']) for bad in manifest['skipped']] == corpus['bad']
    return manifest


def test_encodes_every_row_once_on_both_nodes_as_the_server_does(cluster, tiny_model_dirs, corpus, reference,
                                                                tmp_path):
    output = tmp_path / 'out'
    command = encode_command(tiny_model_dirs['hf'], corpus, output, '-batch_size', 16)
    log = finish(start(command, cluster, tmp_path / 'log'), tmp_path / 'log')

    manifest = check_output(output, corpus, reference)
    # Two actors of one CPU each on two one-CPU nodes: one per node, and the run waits until both have loaded
    # their model. Which of them writes which part is Ray's choice (an idle tie goes to the same actor), so
    # the parts are not required to come from both nodes; the actors are.
    assert 'encoding on 2 actors' in log, log[-3000:]
    assert sorted(Path(i['path']).name for i in manifest['inputs']) == ['a.txt', 'b.jsonl', 'c.parquet', 'd.csv']
    assert manifest['options']['max_seq_len'] == 32 and manifest['options']['pooling_layer'] == [-1]
    assert 'every row exactly once' in log

    again = subprocess.run(encode_command(tiny_model_dirs['hf'], corpus, output, '-max_seq_len', 16),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and 'max_seq_len 32 there, 16 here' in again.stderr

    # A finished output needs no cluster: an address where none answers is not even tried.
    done = subprocess.run([*encode_command(tiny_model_dirs['hf'], corpus, output), '-ray_address',
                           f'127.0.0.1:{free_port()}'], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and '4 input files, 4 already encoded' in done.stderr, done.stderr[-3000:]


def wait_for_parts(output: Path, count: int, process: subprocess.Popen, log: Path) -> dict[str, dict]:
    def enough():
        assert process.poll() is None, f'the command ended early:\n{log.read_text()[-3000:]}'
        return output.exists() and len(list(output.glob('part-*.parquet'))) >= count
    deadline = time.monotonic() + 120
    while not enough():  # closely: the job must still be running when the test strikes
        assert time.monotonic() < deadline, 'no part was written'
        time.sleep(0.02)
    return parts_of(output)


def total_parts(corpus: dict) -> int:
    rows = {'a.txt': 1200, 'b.jsonl': 602, 'c.parquet': 600, 'd.csv': 600}
    return sum(-(-n // 150) for n in rows.values())


def test_an_actor_killed_mid_job_is_restarted_and_the_output_stays_exact(cluster, tiny_model_dirs, corpus,
                                                                         reference, tmp_path):
    output, log = tmp_path / 'out', tmp_path / 'log'
    process = start(encode_command(tiny_model_dirs['hf'], corpus, output, '-batch_size', 4), cluster, log)
    written = wait_for_parts(output, 1, process, log)
    victim = next(iter(written.values()))['pid']
    os.kill(victim, signal.SIGKILL)
    assert len(written) < total_parts(corpus), 'the job ended before the actor was killed'
    finish(process, log)

    check_output(output, corpus, reference)
    assert victim not in {part['pid'] for name, part in parts_of(output).items() if name not in written}


def test_a_killed_driver_resumes_without_redoing_finished_parts(cluster, tiny_model_dirs, corpus, reference,
                                                               tmp_path):
    output, log = tmp_path / 'out', tmp_path / 'log'
    command = encode_command(tiny_model_dirs['hf'], corpus, output, '-batch_size', 4)
    first = start(command, cluster, log)
    wait_for_parts(output, 3, first, log)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in output.glob('part-*.parquet')}
    assert 3 <= len(before) < total_parts(corpus), 'the job ended before the driver was killed'

    finish(start(command, cluster, tmp_path / 'log2'), tmp_path / 'log2')

    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in output.glob('part-*.parquet')}
    assert {name: after[name] for name in before} == before, 'finished parts were written again'
    assert len(after) == total_parts(corpus)
    check_output(output, corpus, reference)


def test_a_bad_row_read_on_the_cluster_stops_the_run_naming_file_and_row(cluster, tiny_model_dirs, tmp_path):
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 'bad.txt').write_text('a fine line\n\nanother\n')
    result = subprocess.run([str(BIN / 'bert-serving-encode'), '-model_dir', str(tiny_model_dirs['hf']),
                             '-input', str(tmp_path / 'in' / 'bad.txt'), '-output_dir', str(tmp_path / 'out'),
                             '-num_workers', '1', '-ray_address', cluster.address], capture_output=True, text=True,
                            env=ray_env(), timeout=150)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1] == (
        f'bert-serving-encode: error: {tmp_path}/in/bad.txt: row 1 (line 2): the text is empty '
        f"(column 'text'; -skip_bad_rows skips such rows)")
    assert 'Traceback' not in result.stderr


def test_a_classifier_encodes_to_the_probabilities_its_server_gives(cluster, tiny_model_dirs, tiny_config,
                                                                   tmp_path):
    from classifiers import write_classifier
    write_classifier(tmp_path / 'tuned', tiny_config, ['negative', 'neutral', 'positive'])
    texts = [sentence(index) for index in range(40)] + ['the quick fox ||| the lazy dog', 'a fox ||| a dog ||| the end']
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 'texts.txt').write_text(''.join(f'{text}\n' for text in texts))
    tuned = ['-tuned_model_dir', tmp_path / 'tuned', '-ckpt_name', 'model.ckpt-7', '-task', 'classify']
    command = [str(BIN / 'bert-serving-encode'), '-model_dir', str(tiny_model_dirs['google']), '-input',
               str(tmp_path / 'in' / 'texts.txt'), '-output_dir', str(tmp_path / 'out'), '-num_workers', '1',
               *OPTIONS, *map(str, tuned)]
    finish(start(command, cluster, tmp_path / 'log'), tmp_path / 'log')

    table = parquet.read_table(tmp_path / 'out')
    order = np.argsort([int(i.rsplit(':', 1)[1]) for i in table.column('id').to_pylist()])
    probabilities = table.column('embedding').combine_chunks().flatten().to_numpy().reshape(len(texts), 3)[order]
    with ServerProcess(tiny_model_dirs['google'], *OPTIONS, *tuned, log_dir=tmp_path) as server:
        with server.client(check_length=False) as client:  # three segments, as the server reads them
            np.testing.assert_allclose(probabilities, client.encode(texts), atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
