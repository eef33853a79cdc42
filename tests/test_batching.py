"""BatchAssembler: the pure rule that turns queued requests into batches."""

from bert_serving.server.batching import BatchAssembler, PendingPart


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
