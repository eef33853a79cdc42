"""The README tells the truth: its options table is the parser's."""

from pathlib import Path

from bert_serving.server.args import get_args_parser, options_table

README = Path(__file__).resolve().parents[1] / 'README.md'


def test_readme_options_table_matches_the_parser():
    text = README.read_text()
    start = text.index('<!-- options:start -->') + len('<!-- options:start -->')
    end = text.index('<!-- options:end -->')
    assert text[start:end].strip() == options_table(get_args_parser()), \
        'README options are stale: run `python -m bert_serving.server.args README.md`'
