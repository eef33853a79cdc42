"""Give the heap's free pages back to the system now and then (glibc's ``malloc_trim``; a no-op elsewhere).

A worker's forward passes allocate and free tensors of many sizes; glibc keeps the freed pages inside its
arenas, so a long-running worker's resident memory creeps up with every new mix of input shapes although
nothing stays allocated. Trimming returns those pages, so resident memory tracks what is in use.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import time


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return None


class HeapTrimmer:
    """``maybe_trim()`` after each unit of work trims at most once every ``every_s`` seconds."""

    def __init__(self, every_s: float = 10.0):
        self.every_s = every_s
        self._trim = _malloc_trim()
        self._last = time.monotonic()

    @property
    def available(self) -> bool:
        return self._trim is not None

    def maybe_trim(self) -> bool:
        """Trim if ``every_s`` has passed since the last trim; return whether it did."""
        now = time.monotonic()
        if self._trim is None or now - self._last < self.every_s:
            return False
        self._trim(0)
        self._last = time.monotonic()
        return True
