"""Pure batch assembly: requests in, batches of at most ``max_batch_size`` rows out.

Small requests (at most ``priority_batch_size`` rows) wait in a high-priority queue and
are taken first. A batch takes rows from as many requests as fit, so many clients
sending one sentence each share one forward pass instead of paying one each.
"""

from collections import deque
from dataclasses import dataclass


@dataclass
class PendingPart:
    """Rows ``offset .. offset+len(texts)`` of job ``job_id``, waiting for a worker."""
    job_id: int
    offset: int
    texts: list
    tokenized: bool
    attempts: int = 0  # times a worker died while holding these rows

    def __len__(self):
        return len(self.texts)

    def split(self, rows: int) -> tuple['PendingPart', 'PendingPart']:
        """The first ``rows`` rows and the rest."""
        head = PendingPart(self.job_id, self.offset, self.texts[:rows], self.tokenized, self.attempts)
        tail = PendingPart(self.job_id, self.offset + rows, self.texts[rows:], self.tokenized, self.attempts)
        return head, tail

    def to_json(self) -> dict:
        return {'job': self.job_id, 'offset': self.offset, 'texts': self.texts, 'tokenized': self.tokenized}

    @classmethod
    def from_json(cls, data: dict) -> 'PendingPart':
        return cls(data['job'], data['offset'], data['texts'], data['tokenized'])


class BatchAssembler:
    """Two FIFO queues of pending rows and the rule that turns them into batches."""

    def __init__(self, max_batch_size: int, priority_batch_size: int):
        self.max_batch_size = max_batch_size
        self.priority_batch_size = priority_batch_size
        self._high = deque()
        self._normal = deque()
        self.queued_rows = 0

    def add_request(self, job_id: int, texts: list, tokenized: bool) -> bool:
        """Queue a request; returns True when it went to the high-priority queue."""
        part = PendingPart(job_id, 0, texts, tokenized)
        high = len(part) <= self.priority_batch_size
        (self._high if high else self._normal).append(part)
        self.queued_rows += len(part)
        return high

    def requeue(self, parts: list[PendingPart]) -> None:
        """Put parts back at the very front (work of a worker that died), keeping their order."""
        for part in reversed(parts):
            self._high.appendleft(part)
            self.queued_rows += len(part)

    def has_full_batch(self) -> bool:
        return self.queued_rows >= self.max_batch_size

    def take(self) -> list[PendingPart]:
        """Up to ``max_batch_size`` rows, high priority first, splitting a part that does not fit."""
        batch, room = [], self.max_batch_size
        for queue in (self._high, self._normal):
            while queue and room:
                part = queue.popleft()
                if len(part) > room:
                    part, rest = part.split(room)
                    queue.appendleft(rest)
                batch.append(part)
                room -= len(part)
        self.queued_rows -= self.max_batch_size - room
        return batch
