"""bert-serving-encode's files without Ray: readers and their errors, parts, the manifest, the final check."""
import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip('pyarrow', reason='the bulk extra: pip install "bert-serving-server[bulk]"')
from pyarrow import parquet  # noqa: E402
from servers import free_port  # noqa: E402

from bert_serving.server.args import get_encode_parser  # noqa: E402
from bert_serving.server.bulk.inputs import BadInputError, find_inputs, read_rows  # noqa: E402
from bert_serving.server.bulk.manifest import OutputDirError, describe_run, open_output_dir  # noqa: E402
from bert_serving.server.bulk.parts import (IncompleteOutputError, plan_parts, verify_output,  # noqa: E402
                                            write_part)

BIN = Path(sys.executable).parent


def rows_of(path: Path, text_column='text', id_column=None, skip=False, input_format=None):
    [source] = find_inputs([str(path)], input_format)
    return read_rows(source, text_column, id_column, skip)


def test_each_format_reads_its_texts_and_ids_in_file_order(tmp_path):
    (tmp_path / 'a.txt').write_bytes(b'first line\r\nsecond\rline\n')  # Windows ending; a stray CR is text
    (tmp_path / 'b.jsonl').write_text('{"text": "one", "key": 7}\n{"text": "two", "key": 8}\n')
    (tmp_path / 'c.csv').write_text('key,text\n007,"a, quoted\nline"\n008,plain\n')
    parquet.write_table(pa.table({'text': ['x', 'y'], 'key': ['p', 'q']}), tmp_path / 'd.parquet')

    assert rows_of(tmp_path / 'a.txt').ids == ['a.txt:0', 'a.txt:1']
    assert rows_of(tmp_path / 'a.txt').texts == ['first line', 'second\rline']
    jsonl = rows_of(tmp_path / 'b.jsonl', id_column='key')
    assert (jsonl.ids, jsonl.texts) == (['7', '8'], ['one', 'two'])
    csv = rows_of(tmp_path / 'c.csv', id_column='key')
    assert (csv.ids, csv.texts) == (['007', '008'], ['a, quoted\nline', 'plain'])
    assert rows_of(tmp_path / 'd.parquet', id_column='key').ids == ['p', 'q']


@pytest.mark.parametrize('name, content, message', [
    ('bad.txt', 'fine\n\nfine\n', 'bad.txt: row 1 (line 2): the text is empty'),
    ('bad.jsonl', '{"text": "fine"}\n{"text": null}\n', 'bad.jsonl: row 1 (line 2): the text is missing'),
    ('bad.jsonl', '{"text": "fine"}\n{"text": 3}\n', 'row 1 (line 2): the text is int, not a string'),
    ('bad.jsonl', '{"text": "fine"}\nnot json\n', 'bad.jsonl: line 2: not JSON'),
    ('bad.csv', 'words\nfine\n', "bad.csv: no column 'text' (-text_column); it has ['words']"),
    ('bad.txt', b'fine\n\xff\n', 'bad.txt: cannot read it as text'),
])
def test_bad_input_is_named_by_file_and_row(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(BadInputError, match='^' + str(tmp_path).replace('.', r'\.') + '/'
                       ) as error:
        rows_of(path)
    assert message in str(error.value)


def test_skip_bad_rows_keeps_the_good_ones_and_lists_the_bad(tmp_path):
    path = tmp_path / 'mixed.jsonl'
    path.write_text('{"text": "a"}\n{"text": ""}\n{"other": 1}\n{"text": "b"}\n')
    rows = rows_of(path, skip=True)
    assert (rows.ids, rows.texts, rows.total) == (['mixed.jsonl:0', 'mixed.jsonl:3'], ['a', 'b'], 4)
    assert [bad['row'] for bad in rows.skipped] == [1, 2]


def test_a_pattern_that_matches_nothing_or_an_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(BadInputError, match='no-such-.*: no such file'):
        find_inputs([str(tmp_path / 'no-such-*.txt')], None)
    (tmp_path / 'data.bin').write_text('x')
    with pytest.raises(BadInputError, match='-input_format'):
        find_inputs([str(tmp_path / 'data.bin')], None)


def test_parts_cut_a_file_by_row_number_and_skip_those_done(tmp_path):
    path = tmp_path / 'f.txt'
    path.write_text(''.join(f'line {i}\n' if i != 4 else '\n' for i in range(10)))
    [source] = find_inputs([str(path)], None)
    rows = read_rows(source, 'text', None, True)
    parts = plan_parts(source, rows, 4, done=set())
    assert [json.loads(p['info'])['first_row'] for p in parts] == [0, 4, 8]
    assert [p['ids'] for p in parts][1] == ['f.txt:5', 'f.txt:6', 'f.txt:7']  # row 4 is empty
    assert json.loads(parts[1]['info'])['skipped'] == [{'row': 4, 'reason': 'the text is empty'}]
    assert [p['name'] for p in plan_parts(source, rows, 4, done={parts[0]['name']})] == \
        [p['name'] for p in parts[1:]]


def write_all(output: Path, parts: list[dict]) -> None:
    for part in parts:
        write_part(str(output), part['name'], part['ids'], part['texts'], np.ones((len(part['ids']), 3)),
                   json.loads(part['info']))


def test_the_final_check_finds_a_missing_part_and_a_repeated_id(tmp_path):
    (tmp_path / 'in').mkdir()
    path = tmp_path / 'in' / 'f.jsonl'
    path.write_text(''.join(json.dumps({'text': f't{i}', 'id': i % 5}) + '\n' for i in range(10)))
    [source] = find_inputs([str(path)], None)
    parts = plan_parts(source, read_rows(source, 'text', 'id', False), 4, done=set())
    output = tmp_path / 'out'
    output.mkdir()
    write_all(output, parts[:2])
    with pytest.raises(IncompleteOutputError, match='part 2 is missing'):
        verify_output(str(output), [source], 4)
    write_all(output, parts[2:])
    with pytest.raises(IncompleteOutputError, match='5 ids appear more than once'):
        verify_output(str(output), [source], 4)
    table = parquet.read_table(output)
    assert table.schema.field('embedding').type == pa.list_(pa.float32(), 3)


def encode_args(tmp_path, *extra) -> Namespace:
    return get_encode_parser().parse_args(['-model_dir', str(tmp_path), '-input', 'x', '-output_dir',
                                           str(tmp_path / 'out'), *extra])


def test_an_output_folder_of_other_options_is_refused_and_overwrite_starts_over(tmp_path):
    output = str(tmp_path / 'out')
    open_output_dir(output, describe_run(encode_args(tmp_path)), overwrite=False)
    (tmp_path / 'out' / 'part-x-00000.parquet').write_text('from the first run')
    open_output_dir(output, describe_run(encode_args(tmp_path)), overwrite=False)  # the same: resume
    other = describe_run(encode_args(tmp_path, '-pooling_strategy', 'REDUCE_MAX'))
    with pytest.raises(OutputDirError, match="pooling_strategy 'REDUCE_MEAN' there, 'REDUCE_MAX' here"):
        open_output_dir(output, other, overwrite=False)
    open_output_dir(output, other, overwrite=True)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['_manifest.json']


def run_encode(*args, python_prefix='') -> subprocess.CompletedProcess:
    code = f'{python_prefix}import sys; from bert_serving.server.cli import encode; sys.exit(encode(sys.argv[1:]))'
    return subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_without_ray_the_command_says_how_to_install_it(tmp_path):
    result = run_encode('-model_dir', tmp_path, '-input', 'x', '-output_dir', tmp_path,
                        python_prefix='import sys; sys.modules["ray"] = None; ')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        'bert-serving-encode: error: bert-serving-encode needs Ray Data, pyarrow and tqdm: '
        'pip install "bert-serving-server[bulk]"')


def test_bad_options_and_input_are_one_line_and_exit_2(tiny_model_dirs, tmp_path):
    (tmp_path / 'a.txt').write_text('fine\n')
    nobody = free_port()  # an address where no cluster answers: refused at once, not retried forever
    cases = [(['-input', tmp_path / 'none*.txt'], 'none*.txt: no such file'),
             (['-input', tmp_path / 'a.txt', '-pooling_strategy', 'NONE'], 'pick another strategy'),
             (['-input', tmp_path / 'a.txt', '-pooling_layer', '-9'], '-pooling_layer [-9] is out of range'),
             (['-input', tmp_path / 'a.txt', '-ray_address', 'head-node'], 'expected auto, host:port or ray://'),
             (['-input', tmp_path / 'a.txt', '-ray_address', f'127.0.0.1:{nobody}'],
              f'-ray_address 127.0.0.1:{nobody}: no Ray cluster answers there (Connection refused)')]
    for extra, message in cases:
        result = run_encode('-model_dir', tiny_model_dirs['hf'], '-output_dir', tmp_path / 'out', *extra)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and 'Traceback' not in result.stderr
