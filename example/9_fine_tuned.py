"""Fine-tune MiniLM on the example topics, then serve the fine-tuned encoder with -tuned_model_dir.

    python example/9_fine_tuned.py [-out DIR] [-epochs 1] [-port 5555 -port_out 5556]

A real, quick fine-tune on the CPU: `BertClassifier` (the Python API of `bert-serving-finetune`) trains a
classification head and the whole encoder for one epoch on 200 of the 240 sentences of
`example/data/topics.tsv`, evaluates on the other 40 and predicts two new sentences. Its checkpoint uses
Google's variable names, so `bert-serving-start -tuned_model_dir DIR -ckpt_name model.ckpt-STEP` serves
the fine-tuned encoder as embeddings with no conversion; the script encodes the same sentences with the
pretrained and the fine-tuned model and shows how far the vectors moved. With -port, the running server
is taken as the pretrained one (its model must be -model_dir). The same fine-tune from the command line:
`bert-serving-finetune -model_dir M -data_dir D -output_dir DIR -do_train -do_eval`.
"""

import tempfile
from pathlib import Path

import numpy as np

from bert_serving.server.finetune import BertClassifier, FinetuneOptions, InputExample
from common import bert_server, example_parser, load_topics

SENTENCES = ['The striker scored in the last minute.', 'Bake the bread for forty minutes.',
             'The new phone has a faster chip.', 'Heavy rain is expected tomorrow.']
NEW = ['Our team won the cup final.', 'It will be sunny and warm all week.']


def fine_tune(model_dir: str, out_dir: Path, epochs: float) -> tuple[BertClassifier, str]:
    """Train on 200 topic sentences, evaluate on 40; the classifier and the name of its checkpoint."""
    sentences, labels = load_topics()
    examples = [InputExample(str(n), text, label=label) for n, (text, label) in enumerate(zip(sentences, labels))]
    train, dev = [e for n, e in enumerate(examples) if n % 6], examples[::6]
    options = FinetuneOptions(max_seq_len=32, train_batch_size=16, learning_rate=1e-4, num_train_epochs=epochs,
                              warmup_proportion=0.1, seed=0)
    classifier = BertClassifier(model_dir, out_dir, options=options)
    best = classifier.train(train, dev)
    print(f'fine-tuned on {len(train)} sentences: {best["name"]}, dev accuracy {best["metrics"]["accuracy"]:.3f} '
          f'on {len(dev)} sentences')
    for text, probabilities in zip(NEW, classifier.predict([InputExample(t, t) for t in NEW])):
        print(f'  {classifier.labels[int(np.argmax(probabilities))]:<10} p={probabilities.max():.2f}  {text!r}')
    return classifier, best['name']


def encode(server_context) -> np.ndarray:
    with server_context as server, server.client() as client:
        return client.encode(SENTENCES)


def main() -> None:
    parser = example_parser(__doc__)
    parser.add_argument('-out', type=Path, help='folder for the fine-tune (default: a temporary one)')
    parser.add_argument('-epochs', type=float, default=1.0, help='passes over the 200 training sentences')
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = options.out or Path(scratch)
        _, ckpt_name = fine_tune(options.model_dir, out_dir, options.epochs)
        base = encode(bert_server(options))
        tuned = encode(bert_server(options, '-tuned_model_dir', str(out_dir), '-ckpt_name', ckpt_name, reuse=False))

    print(f'pretrained vectors {base.shape}, fine-tuned vectors {tuned.shape}')
    cosine = (base * tuned).sum(axis=1) / (np.linalg.norm(base, axis=1) * np.linalg.norm(tuned, axis=1))
    for sentence, similarity in zip(SENTENCES, cosine):
        print(f'  cosine(pretrained, fine-tuned) = {similarity:.4f}  {sentence!r}')
    print(f'max |fine-tuned - pretrained| = {np.abs(tuned - base).max():.4f}')
    print(f'the fine-tuned vectors differ: {not np.allclose(base, tuned, atol=1e-4)}')


if __name__ == '__main__':
    main()
