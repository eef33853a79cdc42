"""The sink's pure reassembly: rows back to requests, in order, whatever order they come in."""

import numpy as np

from bert_serving.server.sink import JobTable, SubscriberTracker


def test_parts_in_any_order_make_one_ordered_result():
    table = JobTable()
    assert table.register(1, b'client', b'5', 5) is None
    rows = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    assert table.add_result(1, 3, rows[3:], [['d'], ['e']]) is None
    assert table.add_result(1, 0, rows[:3], [["a"], ["b"], ["c"]]) is not None
    assert 1 not in table.jobs


def test_result_rows_and_tokens_follow_offsets():
    table = JobTable()
    table.register(1, b'client', b'5', 4)
    rows = np.arange(8, dtype=np.float32).reshape(4, 2)
    table.add_result(1, 2, rows[2:], [['c'], ['d']])
    job = table.add_result(1, 0, rows[:2], [['a'], ['b']])
    array, tokens = job.result()
    np.testing.assert_array_equal(array, rows)
    assert tokens == [['a'], ['b'], ['c'], ['d']]
    assert (job.identity, job.request_id) == (b'client', b'5')


def test_results_before_registration_are_kept():
    table = JobTable()
    rows = np.ones((2, 4), dtype=np.float32)
    assert table.add_result(9, 0, rows, None) is None
    job = table.register(9, b'c', b'1', 2)
    assert job is not None and job.result()[1] is None


def test_duplicate_part_after_a_rerun_is_ignored():
    table = JobTable()
    table.register(1, b'c', b'1', 4)
    rows = np.zeros((2, 1), dtype=np.float32)
    assert table.add_result(1, 0, rows, None) is None
    assert table.add_result(1, 0, rows, None) is None
    assert table.add_result(1, 2, rows, None) is not None


def test_token_level_parts_are_padded_to_the_longest():
    table = JobTable()
    table.register(1, b'c', b'1', 3)
    table.add_result(1, 0, np.ones((2, 5, 2), dtype=np.float32), None)
    array, _ = table.add_result(1, 2, np.ones((1, 3, 2), dtype=np.float32), None).result()
    assert array.shape == (3, 5, 2)
    assert array[2, 3:].sum() == 0 and array[2, :3].sum() == 6


def test_failed_job_drops_late_parts_and_orphans_expire():
    table = JobTable()
    table.register(1, b'c', b'1', 4)
    assert table.fail(1) is not None
    assert table.add_result(1, 0, np.zeros((2, 1), dtype=np.float32), None) is None
    assert 1 not in table.jobs
    table.add_result(2, 0, np.zeros((1, 1), dtype=np.float32), None)
    assert table.expire_orphans(now=0.0) == 0
    assert table.expire_orphans(now=1e12) == 1


def test_replies_wait_for_the_subscription_of_their_client():
    tracker = SubscriberTracker()
    assert not tracker.route(b'alice', [b'alice', b'reply'])
    assert tracker.on_subscription(b'\x01bob') == []
    assert tracker.on_subscription(b'\x01alice') == [[b'alice', b'reply']]
    assert tracker.route(b'alice', [b'alice', b'next'])
    tracker.on_subscription(b'\x00alice')
    assert not tracker.route(b'alice', [b'alice', b'later'])
