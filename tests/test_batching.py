"""BatchAssembler and ReturnWait: the pure rules that turn queued requests into batches, and when."""

import pytest

from bert_serving.server.batching import BatchAssembler, PendingPart, ReturnWait


def rows(batch):
    return [(part.job_id, part.offset, len(part)) for part in batch]


def test_small_requests_from_many_clients_share_one_batch():
    assembler = BatchAssembler(max_batch_size=256, priority_batch_size=16)
    for job_id in range(1, 17):
        assembler.add_request(job_id, [f'sentence {job_id}'], tokenized=False)
    batch = assembler.take()
    assert rows(batch) == [(job_id, 0, 1) for job_id in range(1, 17)]
    assert assembler.queued_rows == 0


def test_large_request_is_split_into_full_batches_in_order():
    assembler = BatchAssembler(max_batch_size=64, priority_batch_size=16)
    assembler.add_request(1, [str(i) for i in range(150)], tokenized=False)
    batches = [assembler.take() for _ in range(3)]
    assert [rows(b) for b in batches] == [[(1, 0, 64)], [(1, 64, 64)], [(1, 128, 22)]]
    assert batches[1][0].texts[0] == '64'
    assert assembler.take() == []


def test_priority_requests_overtake_a_queued_big_job():
    assembler = BatchAssembler(max_batch_size=64, priority_batch_size=16)
    assert not assembler.add_request(1, ['x'] * 500, tokenized=False)
    assert assembler.add_request(2, ['y'] * 3, tokenized=False)
    first = assembler.take()
    assert rows(first) == [(2, 0, 3), (1, 0, 61)]


def test_full_batch_detection_and_requeue_goes_first():
    assembler = BatchAssembler(max_batch_size=4, priority_batch_size=0)
    assembler.add_request(1, list('abc'), tokenized=False)
    assert not assembler.has_full_batch()
    assembler.add_request(2, list('de'), tokenized=True)
    assert assembler.has_full_batch()
    taken = assembler.take()
    assert rows(taken) == [(1, 0, 3), (2, 0, 1)]
    assembler.requeue(taken)
    assert assembler.queued_rows == 5
    again = assembler.take()
    assert rows(again) == [(1, 0, 3), (2, 0, 1)]
    assert rows(assembler.take()) == [(2, 1, 1)]
    assert assembler.take()[0:0] == [] and assembler.queued_rows == 0


def test_part_round_trips_through_json():
    part = PendingPart(7, 3, [['a', 'b']], tokenized=True)
    assert PendingPart.from_json(part.to_json()) == part


def small_parts(count):
    return [PendingPart(job_id, 0, ['one sentence'], False) for job_id in range(count)]


def test_an_idle_worker_waits_for_the_clients_of_the_batch_it_finished():
    wait = ReturnWait(small_rows=16)
    wait.batch_done(small_parts(8), queued_rows=8, seconds=0.040, now=100.0)  # 8 ran, 8 queued meanwhile
    # wait for the 8 that ran, for half the 40 ms of their pass at most
    assert wait.seconds_left(queued_rows=8, now=100.001) == pytest.approx(0.019)
    assert wait.seconds_left(queued_rows=15, now=100.015) > 0
    assert wait.seconds_left(queued_rows=16, now=100.016) == 0  # all back: one pass of 16
    wait.handed_out()
    assert wait.seconds_left(queued_rows=3, now=100.017) == 0


def test_no_wait_after_big_requests_or_for_a_lone_client():
    wait = ReturnWait(small_rows=16)
    big = [PendingPart(1, 256, ['x'] * 200, False), PendingPart(2, 0, ['x'] * 56, False)]  # a tail, a big head
    wait.batch_done(big, queued_rows=10, seconds=0.5, now=0.0)
    assert wait.seconds_left(queued_rows=10, now=0.001) == 0  # their clients wait for the rest of their job
    wait.batch_done(small_parts(1), queued_rows=0, seconds=0.009, now=1.0)
    assert wait.seconds_left(queued_rows=1, now=1.0005) == 0  # the one client is back: go


def test_a_wait_in_vain_skips_the_next_one():
    wait = ReturnWait(small_rows=16)
    wait.batch_done(small_parts(2), queued_rows=0, seconds=0.040, now=0.0)
    assert wait.seconds_left(queued_rows=1, now=0.015) > 0
    assert wait.seconds_left(queued_rows=1, now=0.021) == 0  # the other client stayed away
    wait.handed_out()
    wait.batch_done(small_parts(1), queued_rows=0, seconds=0.040, now=1.0)
    assert wait.seconds_left(queued_rows=0, now=1.001) == 0 and wait.seconds_left(queued_rows=1, now=1.002) == 0
    wait.batch_done(small_parts(2), queued_rows=0, seconds=0.040, now=2.0)
    assert wait.seconds_left(queued_rows=1, now=2.001) > 0  # waiting again
