"""What bert-serving-finetune does with its options: read and check all data, then train, evaluate, predict."""
from __future__ import annotations

import logging
import os

from . import checkpoints
from .classifier import BertClassifier, FinetuneOptions, write_predictions
from .data import TsvProcessor

log = logging.getLogger('bert_serving.finetune')
OPTION_NAMES = [name for name in FinetuneOptions.__dataclass_fields__]


def options_from_args(args) -> FinetuneOptions:
    return FinetuneOptions(**{name: getattr(args, name) for name in OPTION_NAMES if hasattr(args, name)})


def run(args) -> None:
    """Every data file is read and checked before the model is built; ValueError names what is wrong."""
    labels = None
    if not args.do_train:
        labels = checkpoints.read_labels(args.output_dir) or (
            checkpoints.read_labels(args.tuned_model_dir) if args.tuned_model_dir else None)
        if labels is None:
            raise ValueError(f'{args.output_dir} holds no {checkpoints.LABELS_FILE}: train first (-do_train) or '
                             f'give the -output_dir or -tuned_model_dir of a fine-tune')
    processor = TsvProcessor(args.data_dir, args.skip_bad_rows, labels)
    train = processor.get_train_examples() if args.do_train else None
    dev = processor.get_dev_examples() if args.do_eval or (args.do_train and _has(args, 'dev.tsv')) else None
    predict_file = args.predict_file or os.path.join(args.data_dir, 'test.tsv')
    to_predict = processor.read_file(predict_file) if args.do_predict else None
    classifier = BertClassifier(args.model_dir, args.output_dir, labels=processor.get_labels(),
                                tuned_model_dir=args.tuned_model_dir, options=options_from_args(args))
    for name, count in processor.skipped.items():
        log.warning('%s: skipped %d bad row(s)', name, count)
    if train is not None:
        best = classifier.train(train, dev)
        if best:
            log.info('best checkpoint: %s (step %d, dev %s)', best['name'], best['step'],
                     {k: round(v, 4) for k, v in best['metrics'].items() if isinstance(v, float)})
    if dev is not None and args.do_eval:
        _evaluate(classifier, dev, processor.skipped)
    if to_predict is not None:
        path = os.path.join(classifier.output_dir, 'predictions.tsv')
        write_predictions(path, classifier.labels, classifier.predict(to_predict))
        log.info('wrote %s (%d rows)', path, len(to_predict))


def _has(args, name):
    return os.path.isfile(os.path.join(args.data_dir, name))


def _evaluate(classifier, dev, skipped):
    results = classifier.evaluate(dev)
    prefix = checkpoints.latest(classifier.output_dir)
    results.update(checkpoint=os.path.basename(prefix) if prefix else None, skipped_rows=dict(skipped))
    path = os.path.join(classifier.output_dir, 'eval_results.json')
    checkpoints.write_json(path, results)
    log.info('eval: accuracy %.4f, f1 %.4f, loss %.4f -> %s', results['accuracy'], results['f1'], results['loss'],
             path)
