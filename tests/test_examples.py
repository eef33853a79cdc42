"""Every script of example/ runs to completion and prints what it promises.

Most examples talk to one shared MiniLM server through -port/-port_out; 7 and 9 need servers with
other options and start their own. Quick modes keep the module under four minutes on 2 cores
(3.5 min measured with other jobs sharing the machine).
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from servers import ServerProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / 'example').glob('[1-9]*_*.py'))


@pytest.fixture(scope='module')
def server(minilm_dir, tmp_path_factory):
    with ServerProcess(minilm_dir, log_dir=tmp_path_factory.mktemp('examples-server')) as process:
        yield process


def run_example(name: str, *args, timeout: float = 240) -> str:
    """Run example/<name>.py with ``args``; its stdout, after checking that it exited with 0."""
    result = subprocess.run([sys.executable, str(REPO / 'example' / f'{name}.py'), *map(str, args)],
                            cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f'{name} exited with {result.returncode}:\n{result.stdout}\n{result.stderr[-5000:]}'
    return result.stdout


def ports(server) -> list[str]:
    return ['-port', str(server.port), '-port_out', str(server.port_out)]


def test_every_example_is_documented_and_listed_in_the_readme():
    readme = (REPO / 'README.md').read_text()
    assert len(EXAMPLES) == 11
    for path in EXAMPLES:
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and f'python example/{path.name}' in docstring, f'{path.name}: no usage in its docstring'
        assert f'example/{path.name}' in readme, f'{path.name} is missing from the README'


def test_1_simple_encode(server):
    out = run_example('1_simple_encode', '--quick', *ports(server))
    assert 'encoded 3 sentences -> shape (3, 384), dtype float32' in out
    speeds = re.findall(r'^\s+(\d+)\s+([\d.]+)$', out, flags=re.MULTILINE)
    assert [int(size) for size, _ in speeds] == [1, 16, 64]
    assert all(float(speed) > 0 for _, speed in speeds)


def test_2_async_encode(server):
    out = run_example('2_async_encode', *ports(server))
    assert len(re.findall(r'^request +\d+: \(16, 384\)$', out, flags=re.MULTILINE)) == 12
    assert 'received 12 batches in all -> (192, 384)' in out
    assert 'first batch matches a blocking encode: True' in out


def test_3_multicast(server):
    out = run_example('3_multicast', *ports(server))
    assert 'sender: encoded 3 requests of (5, 384)' in out
    for clone in (0, 1):
        assert f'clone {clone} received the same 3 results as the sender: True' in out


def test_4_tf_data(server):
    out = run_example('4_tf_data', *ports(server))
    assert 'first batch: vectors (32, 384) float32, labels (32,)' in out
    assert '8 batches, 240 sentences' in out


def test_5_keras_classifier_beats_chance(server):
    out = run_example('5_keras_classifier', '--quick', *ports(server))
    accuracy = float(re.search(r'test accuracy: ([\d.]+) on 60 sentences', out).group(1))
    assert accuracy > 0.8, out  # chance is 0.25; the topics are easy for MiniLM


def test_6_tfrecord_round_trip(server, tmp_path):
    out = run_example('6_tfrecord', '-out', tmp_path / 'v.tfrecord', *ports(server))
    assert (tmp_path / 'v.tfrecord').stat().st_size > 240 * 384 * 4
    assert 'read back 4 batches; first: vector (64, 384)' in out
    assert 'vectors read back equal those encoded: True' in out


def test_7_pooling_plot_writes_a_png(minilm_dir, tmp_path):
    png = tmp_path / 'pooling.png'
    out = run_example('7_pooling_plot', '-model_dir', minilm_dir, '-out', png)
    assert 'token vectors of layers -1 -2 -4 -6: (240, 25, 1536)' in out
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 20_000
    scores = [float(s) for s in re.findall(r'^layer +-1 +(.*)$', out, flags=re.MULTILINE)[0].split()]
    assert len(scores) == 4 and min(scores) > 0.5  # last layer: topics well apart whatever the pooling


def test_8_faq_search_finds_paraphrases(server):
    queries = {
        'Will scripts written for the 1.10 client keep working?':
            'Does the old `bert-serving-client` 1.10.0 still work?',
        'my program is stuck waiting for an answer': 'Why does my client hang?',
        'use a graphics card': 'How do I run on a GPU?',
        'is it safe to use one client from many threads': 'Can I use one BertClient from several threads?',
    }
    args = [arg for query in queries for arg in ('--query', query)]
    out = run_example('8_faq_search', *args, *ports(server))
    best = re.findall(r'^  1\. [\d.]+  (.*)$', out, flags=re.MULTILINE)
    assert best == list(queries.values()), out


def test_8_faq_search_interactive(server):
    result = subprocess.run([sys.executable, str(REPO / 'example' / '8_faq_search.py'), *ports(server)],
                            input='vectors for each word\n\n', capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.search(r'^  1\. [\d.]+  How do I get one vector per token\?$', result.stdout, flags=re.MULTILINE)


def test_9_fine_tunes_minilm_and_serves_it(server, minilm_dir, tmp_path):
    out = run_example('9_fine_tuned', '-model_dir', minilm_dir, '-out', tmp_path, *ports(server))
    accuracy = re.search(r'fine-tuned on 200 sentences: (model\.ckpt-\d+), dev accuracy ([\d.]+) on 40', out)
    assert accuracy, out
    assert (tmp_path / f'{accuracy[1]}.index').is_file() and (tmp_path / 'labels.txt').is_file()
    assert float(accuracy[2]) >= 0.8, out  # 0.975 measured after one epoch
    assert re.search(r'^  sports +p=[\d.]+  .Our team won the cup final', out, flags=re.MULTILINE), out
    assert 'pretrained vectors (4, 384), fine-tuned vectors (4, 384)' in out
    cosines = [float(c) for c in re.findall(r'cosine\(pretrained, fine-tuned\) = ([\d.]+)', out)]
    assert len(cosines) == 4 and all(0.1 < c < 0.9999 for c in cosines), out
    assert 'the fine-tuned vectors differ: True' in out


def test_10_bulk_search_finds_neighbours_in_parquet(minilm_dir, tmp_path):
    pytest.importorskip('ray.data', reason='the bulk extra: pip install "bert-serving-server[bulk]"')
    out = run_example('10_bulk_search', '-model_dir', minilm_dir, '-output_dir', tmp_path / 'vectors',
                      '-query', 'who scored in the final?')
    assert '240 sentences encoded, 384 dimensions' in out
    first = out.split('query: who scored in the final?')[1].splitlines()[1]
    topics = (REPO / 'example' / 'data' / 'topics.tsv').read_text().splitlines()
    sports = {line.split('\t', 1)[1] for line in topics if line.startswith('sports\t')}
    assert first.split('  ', 2)[2] in sports, out
    assert sorted(p.suffix for p in (tmp_path / 'vectors').iterdir())[-1] == '.parquet'


def test_11_rerank_trains_a_pair_classifier_and_ranks_the_right_topic_first(minilm_dir, tmp_path):
    out = run_example('11_rerank', '-model_dir', minilm_dir, '-out', tmp_path, timeout=300)
    assert (tmp_path / 'model' / 'labels.txt').read_text() == '0\n1\n'
    assert "labels ['0', '1'], /rerank scores label '1'" in out
    accuracy = int(re.search(r'right topic first for (\d+)% of the held-out queries', out).group(1))
    assert accuracy >= 45, out  # chance is 25%; 68% measured after one epoch
