"""Semantic search over the README's FAQ: type a question, get the closest FAQ entries and the answer.

    python example/8_faq_search.py                                   # interactive; empty line quits
    python example/8_faq_search.py --query "is my old client compatible?"

The FAQ questions are encoded once; each query is encoded and compared to them by cosine
similarity, so a question worded differently still finds its entry. `--query` (repeatable)
answers the given questions and exits, for scripts and tests.
"""

import re
from pathlib import Path

import numpy as np

from common import REPO, bert_server, example_parser

TOP_K = 3


def read_faq(readme: Path) -> list[tuple[str, str]]:
    """(question, answer) pairs of the README's FAQ section, written as ``**Question?** Answer``."""
    section = readme.read_text(encoding='utf-8').split('\n## FAQ', 1)[1].split('\n## ', 1)[0]
    entries = re.findall(r'^\*\*(.+?)\*\*\s+(.+?)(?=\n\s*\n|\Z)', section, flags=re.MULTILINE | re.DOTALL)
    return [(question.strip(), ' '.join(answer.split())) for question, answer in entries]


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def answer(client, faq: list[tuple[str, str]], faq_vectors: np.ndarray, query: str) -> None:
    scores = faq_vectors @ unit(client.encode([query]))[0]
    print(f'\nquery: {query}')
    for rank, index in enumerate(np.argsort(-scores)[:TOP_K], 1):
        print(f'  {rank}. {scores[index]:.3f}  {faq[index][0]}')
    print(f'  answer: {faq[int(np.argmax(scores))][1]}', flush=True)


def main() -> None:
    parser = example_parser(__doc__)
    parser.add_argument('--query', action='append', help='answer this question and exit (repeatable)')
    parser.add_argument('-readme', type=Path, default=REPO / 'README.md', help='file with the FAQ section')
    options = parser.parse_args()
    faq = read_faq(options.readme)
    with bert_server(options) as server, server.client() as client:
        faq_vectors = unit(client.encode([question for question, _ in faq]))
        print(f'{len(faq)} FAQ questions encoded -> {faq_vectors.shape}')
        for query in options.query or []:
            answer(client, faq, faq_vectors, query)
        if options.query:
            return
        try:
            while query := input('\nyour question (empty line to quit): ').strip():
                answer(client, faq, faq_vectors, query)
        except EOFError:
            pass


if __name__ == '__main__':
    main()
