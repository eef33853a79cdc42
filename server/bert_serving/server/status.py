"""Request statistics for SHOW_STATUS, bounded in memory whatever the traffic."""

import time
from collections import OrderedDict, deque

MAX_CLIENTS_TRACKED = 500
ACTIVE_CLIENT_WINDOW_S = 180
INTERVALS_KEPT = 200


def _summary(name: str, values) -> dict:
    values = list(values)
    if not values:
        return {}
    low, high = min(values), max(values)
    return {f'avg_{name}': sum(values) / len(values), f'min_{name}': low, f'max_{name}': high,
            f'num_min_{name}': sum(v == low for v in values), f'num_max_{name}': sum(v == high for v in values)}


class ServerStatistics:
    """Counts kept by the ventilator; ``value`` is the ``statistic`` of a SHOW_STATUS reply."""

    def __init__(self):
        self._requests_per_client = OrderedDict()   # identity -> count, least recently seen first
        self._last_seen = {}
        self._request_sizes = deque(maxlen=10_000)
        self._intervals = deque(maxlen=INTERVALS_KEPT)
        self._last_request_time = None
        self._batch_rows = deque(maxlen=10_000)
        self.num_data_request = 0
        self.num_sys_request = 0
        self.num_total_seq = 0
        self.num_bad_request = 0
        self.num_busy_reply = 0
        self.num_forward_pass = 0
        self.num_worker_restart = 0

    def _seen(self, client: bytes) -> None:
        self._requests_per_client[client] = self._requests_per_client.pop(client, 0) + 1
        self._last_seen[client] = time.monotonic()
        while len(self._requests_per_client) > MAX_CLIENTS_TRACKED:
            oldest, _ = self._requests_per_client.popitem(last=False)
            self._last_seen.pop(oldest, None)

    def on_control(self, client: bytes) -> None:
        self._seen(client)
        self.num_sys_request += 1

    def on_encode(self, client: bytes, num_rows: int) -> None:
        self._seen(client)
        self.num_data_request += 1
        self.num_total_seq += num_rows
        self._request_sizes.append(num_rows)
        now = time.monotonic()
        if self._last_request_time is not None:
            self._intervals.append(now - self._last_request_time)
        self._last_request_time = now

    def on_batch(self, num_rows: int) -> None:
        self.num_forward_pass += 1
        self._batch_rows.append(num_rows)

    @property
    def value(self) -> dict:
        now = time.monotonic()
        stats = {
            'num_data_request': self.num_data_request,
            'num_total_seq': self.num_total_seq,
            'num_sys_request': self.num_sys_request,
            'num_total_request': self.num_data_request + self.num_sys_request,
            'num_total_client': len(self._requests_per_client),
            'num_active_client': sum(now - t < ACTIVE_CLIENT_WINDOW_S for t in self._last_seen.values()),
            'num_bad_request': self.num_bad_request,
            'num_busy_reply': self.num_busy_reply,
            'num_forward_pass': self.num_forward_pass,
            'num_worker_restart': self.num_worker_restart,
        }
        stats.update(_summary('request_per_client', self._requests_per_client.values()))
        stats.update(_summary('size_per_request', self._request_sizes))
        stats.update(_summary('rows_per_forward_pass', self._batch_rows))
        stats.update(_summary('last_two_interval', self._intervals))
        stats.update(_summary('request_per_second', [1 / v for v in self._intervals if v > 0]))
        return stats
