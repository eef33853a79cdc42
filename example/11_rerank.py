"""Train a pair classifier on MiniLM, serve it with -task classify, and rerank answers over HTTP /rerank.

    python example/11_rerank.py [-out DIR] [-epochs 1]

The pairs come from the bundled topics (example/data/topics.tsv): two sentences of one topic are
relevant to each other (label 1), two of different topics are not (label 0). Three quarters of each
topic make a few hundred training pairs for `bert-serving-finetune`; the rest are held out. Each
held-out sentence is then a query, and one held-out sentence of every topic its candidate answers:
`POST /rerank {"query": q, "texts": [...]}` orders them by the probability of label 1, and the script
prints how often the answer of the query's own topic comes first (chance: one in four).
"""

import csv
import json
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

from bert_serving.server.benchmark import free_port
from common import bert_server, example_parser, load_topics

MAX_SEQ_LEN = 40
TRAIN_SHARE = 0.75


def split_topics(seed: int = 0) -> tuple[dict, dict]:
    """Sentences per topic, shuffled, split into (training, held out)."""
    by_topic = defaultdict(list)
    for sentence, label in zip(*load_topics()):
        by_topic[label].append(sentence)
    rng = random.Random(seed)
    train, held_out = {}, {}
    for topic, sentences in sorted(by_topic.items()):
        rng.shuffle(sentences)
        cut = int(len(sentences) * TRAIN_SHARE)
        train[topic], held_out[topic] = sentences[:cut], sentences[cut:]
    return train, held_out


def pairs(by_topic: dict, seed: int) -> list[tuple[str, str, str]]:
    """Per sentence, one pair with a sentence of its topic (1) and one with a sentence of another (0)."""
    rng = random.Random(seed)
    topics = sorted(by_topic)
    rows = []
    for topic in topics:
        for sentence in by_topic[topic]:
            same = rng.choice([s for s in by_topic[topic] if s != sentence])
            other = rng.choice(by_topic[rng.choice([t for t in topics if t != topic])])
            rows += [(sentence, same, '1'), (sentence, other, '0')]
    rng.shuffle(rows)
    return rows


def write_tsv(path: Path, rows) -> None:
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f, delimiter='\t', lineterminator='\n')
        writer.writerow(['text_a', 'text_b', 'label'])
        writer.writerows(rows)


def fine_tune(model_dir: str, data_dir: Path, out_dir: Path, epochs: int) -> str:
    """Train with bert-serving-finetune; the name of the best checkpoint."""
    command = [str(Path(sys.executable).parent / 'bert-serving-finetune'), '-model_dir', model_dir,
               '-data_dir', str(data_dir), '-output_dir', str(out_dir), '-do_train', '-max_seq_len', str(MAX_SEQ_LEN),
               '-train_batch_size', '16', '-learning_rate', '1e-4', '-num_train_epochs', str(epochs),
               '-warmup_proportion', '0.1', '-num_preprocess_workers', '1', '-seed', '1']
    print('$', ' '.join(command[1:]), flush=True)
    subprocess.run(command, check=True)
    return json.loads((out_dir / 'best_checkpoint.json').read_text())['name']


def wait_for_http(url: str, timeout: float = 30) -> None:
    """Until the server's HTTP proxy answers /ready (it starts beside the workers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + '/ready', timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def rerank(url: str, query: str, texts: list[str]) -> list[dict]:
    body = json.dumps({'query': query, 'texts': texts}).encode()
    request = urllib.request.Request(url + '/rerank', data=body, headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def evaluate(url: str, held_out: dict, show: int = 3) -> float:
    """Top-1 accuracy of /rerank: does the candidate of the query's topic come first?"""
    topics = sorted(held_out)
    hits = total = 0
    for topic in topics:
        for index, query in enumerate(held_out[topic]):
            # one candidate per topic: the next held-out sentence of it (never the query itself)
            candidates = [held_out[t][(index + 1) % len(held_out[t])] for t in topics]
            ranked = rerank(url, query, candidates)
            hits += topics[ranked[0]['index']] == topic
            total += 1
            if total <= show:
                print(f'\nquery: {query}')
                for entry in ranked:
                    print(f'  {entry["score"]:.3f}  [{topics[entry["index"]]}] {candidates[entry["index"]]}')
    return hits / total


def main() -> None:
    parser = example_parser(__doc__)
    parser.add_argument('-out', type=Path, help='folder for the data and the fine-tuned model (default: temporary)')
    parser.add_argument('-epochs', type=int, default=1, help='training epochs (default: %(default)s)')
    options = parser.parse_args()
    train, held_out = split_topics()
    with tempfile.TemporaryDirectory() as scratch:
        root = options.out or Path(scratch)
        data_dir, out_dir = root / 'data', root / 'model'
        data_dir.mkdir(parents=True, exist_ok=True)
        rows = pairs(train, seed=1)
        dev_cut = len(rows) // 6
        write_tsv(data_dir / 'train.tsv', rows[dev_cut:])
        write_tsv(data_dir / 'dev.tsv', rows[:dev_cut])
        print(f'{len(rows) - dev_cut} training pairs, {dev_cut} dev pairs, '
              f'{sum(map(len, held_out.values()))} held-out queries', flush=True)
        started = time.perf_counter()
        ckpt_name = fine_tune(options.model_dir, data_dir, out_dir, options.epochs)
        print(f'fine-tuned in {time.perf_counter() - started:.0f} s', flush=True)
        http_port = free_port()
        with bert_server(options, '-tuned_model_dir', str(out_dir), '-ckpt_name', ckpt_name, '-task', 'classify',
                         '-max_seq_len', str(MAX_SEQ_LEN), '-http_port', str(http_port), reuse=False) as server:
            with server.client() as client:
                config = client.server_config
            print(f'serving {ckpt_name}: labels {config["labels"]}, /rerank scores label {config["rerank_label"]!r}')
            url = f'http://127.0.0.1:{http_port}'
            wait_for_http(url)
            accuracy = evaluate(url, held_out)
    print(f'\n/rerank put the answer of the right topic first for {accuracy:.0%} of the held-out queries '
          f'(chance: 25%)')


if __name__ == '__main__':
    main()
