"""A preprocessing worker process: ``python -m bert_serving.server.finetune.tokenize_worker TASK_FILE``.

TASK_FILE is a pickle of (TokenizerSettings, list of chunks of rows); for each chunk in order the worker
writes the pickled (input_ids, input_type_ids, lengths) to stdout. It is started with a fresh interpreter
(not multiprocessing), so it never re-imports the caller's main module nor loads TensorFlow.
"""
import pickle
import sys

from .records import tokenize_chunk


def main(task_file: str) -> None:
    with open(task_file, 'rb') as f:
        settings, chunks = pickle.load(f)
    builder = settings.builder()
    out = sys.stdout.buffer
    for rows in chunks:
        pickle.dump(tokenize_chunk(builder, rows), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == '__main__':
    main(sys.argv[1])
