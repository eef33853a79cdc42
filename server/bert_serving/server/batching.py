"""Pure batch assembly: requests in, batches of at most ``max_batch_size`` rows out.

Small requests (at most ``priority_batch_size`` rows) wait in a high-priority queue and
are taken first. A batch takes rows from as many requests as fit, so many clients
sending one sentence each share one forward pass instead of paying one each; ``ReturnWait``
says how long an idle worker waits for such clients to come back (times are passed in).
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


class ReturnWait:
    """How long an idle worker waits for the clients of the batch that just finished to send again.

    Clients that send one small request after another (a script encoding sentence by sentence, the threads of a
    web back end) come back a few milliseconds after their answers. Handing an idle worker only what queued in
    the meantime splits them into two groups that take turns in half-size forward passes for good; waiting
    until the finished batch's small requests are back, for at most ``fraction`` of the time that batch took,
    lets them share one pass. Half a pass is what clients behind the HTTP proxy need (a quarter served
    BertClients but not them). A wait that ends with the clients still away skips the next one, so clients that
    do not come back quickly lose at most that fraction every other batch.
    """

    def __init__(self, small_rows: int, fraction: float = 0.5):
        self.small_rows = small_rows
        self.fraction = fraction
        self._expected = 0
        self._deadline = 0.0
        self._skip_next = False

    def batch_done(self, parts: list[PendingPart], queued_rows: int, seconds: float, now: float) -> None:
        """A worker finished ``parts`` after ``seconds``; ``queued_rows`` wait in the queue."""
        if self._skip_next:
            self._skip_next, self._expected = False, 0
            return
        returning = sum(len(part) for part in parts if part.offset == 0 and len(part) <= self.small_rows)
        self._expected = returning + queued_rows if returning else 0
        self._deadline = now + self.fraction * seconds

    def handed_out(self) -> None:
        """An idle worker took a batch: the wait, if any, is over."""
        self._expected = 0

    def seconds_left(self, queued_rows: int, now: float) -> float:
        """How much longer an idle worker should wait before it takes the ``queued_rows`` (0: take them now)."""
        if queued_rows >= self._expected:
            return 0.0
        if now < self._deadline:
            return self._deadline - now
        if queued_rows:  # waited in vain: the clients are slower than a pass
            self._skip_next = True
        self._expected = 0
        return 0.0
