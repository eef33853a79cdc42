"""HeapTrimmer: freed heap pages go back to the system (glibc), at most once per interval."""
import subprocess
import sys

import pytest

from bert_serving.server.heap import HeapTrimmer

FRAGMENT_AND_TRIM = '''
from bert_serving.server.heap import HeapTrimmer

def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 2 ** 20

trimmer = HeapTrimmer(every_s=0)
start = rss_mb()
blocks = [bytearray(4096) for _ in range(50_000)]  # 200 MB of small heap blocks
kept = blocks[::100]  # one live block every 400 KB: the heap cannot shrink from its top
del blocks
freed = rss_mb()
trimmer.maybe_trim()
print(freed - start, freed - rss_mb())
'''


def test_trimming_gives_freed_heap_pages_back():
    if not HeapTrimmer().available:
        pytest.skip('no glibc malloc_trim here')
    out = subprocess.run([sys.executable, '-c', FRAGMENT_AND_TRIM], capture_output=True, text=True, check=True)
    held, returned = map(float, out.stdout.split())
    assert held > 150, f'the freed blocks should still be resident before the trim ({held:.0f} MB)'
    assert returned > 150, f'the trim gave back only {returned:.0f} of {held:.0f} MB'


def test_trims_at_most_once_per_interval():
    trimmer = HeapTrimmer(every_s=3600)
    assert not trimmer.maybe_trim()  # the interval counts from the start
    trimmer.every_s = 0
    assert trimmer.maybe_trim() is trimmer.available
