"""A folder of text -> Parquet with bert-serving-encode -> the nearest neighbours of a query.

    python example/10_bulk_search.py                              # the sentences of example/data/topics.tsv
    python example/10_bulk_search.py -corpus_dir my_texts -query "who won the match?"

Needs the bulk extra (`pip install "bert-serving-server[bulk]"`). The corpus is every `*.txt` file of
-corpus_dir, one sentence a line (by default the 240 sentences of example/data/topics.tsv, written to a
temporary folder); the queries go into one more file of the same run, so a single bert-serving-encode
(on a local Ray cluster) embeds both. The Parquet parts are then read with pyarrow, and the neighbours
found with FAISS when it is installed, numpy otherwise.
"""

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import DEFAULT_MODEL, TOPICS

QUERIES = ['who scored in the final?', 'a new phone was released']
TOP_K = 3
QUERY_FILE = '__queries__.txt'  # its rows' ids are <path>/__queries__.txt:<row>


def parse_args():
    title, _, details = __doc__.partition('\n')
    parser = argparse.ArgumentParser(description=title, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-model_dir', default=str(DEFAULT_MODEL), help='model to encode with (default: %(default)s)')
    parser.add_argument('-corpus_dir', help='folder of .txt files, one sentence a line (default: topics.tsv)')
    parser.add_argument('-query', action='append', help=f'a query (repeatable; default: {QUERIES})')
    parser.add_argument('-output_dir', help='where the Parquet parts go (default: a temporary folder)')
    return parser.parse_args()


def write_topics(folder: Path) -> Path:
    with open(TOPICS, newline='', encoding='utf-8') as f:
        sentences = [row['sentence'] for row in csv.DictReader(f, delimiter='\t')]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'topics.txt').write_text(''.join(f'{s}\n' for s in sentences), encoding='utf-8')
    return folder


def encode(model_dir: str, corpus: Path, queries: list[str], output: Path, tmp: Path) -> None:
    """One bert-serving-encode run over the corpus files and a file of the queries."""
    query_file = tmp / QUERY_FILE
    query_file.write_text(''.join(f'{q}\n' for q in queries), encoding='utf-8')
    command = [str(Path(sys.executable).parent / 'bert-serving-encode'), '-model_dir', model_dir,
               '-input', f'{corpus}/*.txt', str(query_file), '-output_dir', str(output), '-overwrite']
    subprocess.run(command, check=True)


def load(output: Path) -> tuple[list[str], list[str], np.ndarray]:
    """ids, texts and unit-length vectors of every row of the output, as any Parquet reader sees them."""
    from pyarrow import parquet

    table = parquet.read_table(output)
    vectors = table.column('embedding').combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return table.column('id').to_pylist(), table.column('text').to_pylist(), vectors


def nearest(corpus: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and indexes of the k nearest corpus rows of each query, by cosine similarity."""
    try:
        import faiss
    except ImportError:
        scores = queries @ corpus.T
        order = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, order, axis=1), order
    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(corpus.astype(np.float32))
    return index.search(queries.astype(np.float32), k)


def main() -> None:
    args = parse_args()
    queries = args.query or QUERIES
    with tempfile.TemporaryDirectory(prefix='bulk-search-') as tmp:
        corpus = Path(args.corpus_dir) if args.corpus_dir else write_topics(Path(tmp) / 'corpus')
        output = Path(args.output_dir or Path(tmp) / 'vectors')
        encode(args.model_dir, corpus, queries, output, Path(tmp))
        ids, texts, vectors = load(output)
    is_query = np.array([Path(i.rsplit(':', 1)[0]).name == QUERY_FILE for i in ids])
    query_rows = sorted(np.flatnonzero(is_query), key=lambda row: int(ids[row].rsplit(':', 1)[1]))
    corpus_rows = np.flatnonzero(~is_query)
    scores, order = nearest(vectors[corpus_rows], vectors[query_rows], TOP_K)
    print(f'{len(corpus_rows)} sentences encoded, {vectors.shape[1]} dimensions')
    for query_row, row_scores, row_order in zip(query_rows, scores, order):
        print(f'\nquery: {texts[query_row]}')
        for rank, (score, index) in enumerate(zip(row_scores, row_order), 1):
            print(f'  {rank}. {score:.3f}  {texts[corpus_rows[index]]}')


if __name__ == '__main__':
    main()
