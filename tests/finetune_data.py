"""A small classification data set of our own, in the words of the tiny test vocabulary (tests/conftest.py).

Label ``good`` rows hold words of GOOD, ``bad`` rows words of BAD, both mixed with neutral filler, so a few
hundred steps of a tiny BERT separate them; ``pairs`` rows are ``same`` when both texts share a group.
"""

import random
from pathlib import Path

GOOD = 'good better right hello day fine first python'.split()
BAD = 'lazy dog flood short control fault urgent small'.split()
FILLER = 'the a an is of and in on at this that what how'.split()
HEADER = 'label\ttext_a\tweight\n'


def sentence(rng: random.Random, words: list[str]) -> str:
    chosen = rng.sample(words, 3) + rng.sample(FILLER, 3)
    rng.shuffle(chosen)
    return ' '.join(chosen)


def rows(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        label = 'good' if n % 2 else 'bad'
        out.append((label, sentence(rng, GOOD if label == 'good' else BAD)))
    return out


def write_tsv(path: Path, data: list[tuple[str, str]], header: str = HEADER) -> Path:
    with open(path, 'w', encoding='utf-8') as f:
        f.write(header)
        f.writelines(f'{label}\t{text}\t1.0\n' for label, text in data)
    return path


def write_data_dir(folder: Path, train_rows: int = 320, dev_rows: int = 64) -> Path:
    """train.tsv, dev.tsv and test.tsv (no labels, no weights) of the good/bad task."""
    folder.mkdir(parents=True, exist_ok=True)
    write_tsv(folder / 'train.tsv', rows(train_rows, seed=1))
    write_tsv(folder / 'dev.tsv', rows(dev_rows, seed=2))
    with open(folder / 'test.tsv', 'w', encoding='utf-8') as f:
        f.write('text_a\n')
        f.writelines(text + '\n' for _, text in rows(dev_rows, seed=3))
    return folder
