"""Faults and floods: a killed worker, a full queue, hostile sentences. Nothing hangs, nothing is lost."""

import logging
import os
import re
import signal
import threading
import time

import numpy as np
import pytest

from bert_serving.client import ServerError
from servers import ServerProcess, batches_held, frozen, wait_until, worker_pids

pytestmark = pytest.mark.slow


def sink_pid(server: ServerProcess) -> int:
    """The pid of the one child that multiprocessing spawned (its command line says so) and that is not a worker."""
    with server.client() as client:
        workers = set(worker_pids(client).values())
    spawned = []
    for pid in set(server.child_pids()) - workers:
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:
                if b'spawn_main' in cmdline.read():
                    spawned.append(pid)
        except FileNotFoundError:
            continue
    assert len(spawned) == 1, spawned
    return spawned[0]


def test_killed_worker_is_replaced_and_its_rows_are_rerun(tiny_model_dirs, tmp_path):
    texts = [f'sentence number {i} for the fault test' for i in range(3000)]
    with ServerProcess(tiny_model_dirs['hf'], '-max_batch_size', 16, num_worker=2, log_dir=tmp_path) as server, \
            server.client() as observer:
        expected = observer.encode(texts[:50])
        pids = worker_pids(observer)
        results = {}

        def encode_all():
            with server.client(timeout=120_000) as client:
                results['vectors'] = client.encode(texts)

        sender = threading.Thread(target=encode_all)
        with frozen(pids.values()):
            sender.start()
            assert wait_until(lambda: all(batches_held(observer).values())), 'the batches never reached the workers'
            log_before = server.log()
            os.kill(pids[0], signal.SIGKILL)  # it dies holding a batch
        sender.join(120)
        assert not sender.is_alive()
        assert results['vectors'].shape == (3000, 32)
        np.testing.assert_allclose(results['vectors'][:50], expected, atol=1e-5)
        assert observer.server_status['statistic']['num_worker_restart'] == 1
        assert wait_until(lambda: observer.server_status['statistic']['num_ready_worker'] == 2)
        assert worker_pids(observer)[0] != pids[0]
        assert re.search(r'worker 0 died holding [1-9]\d* rows', server.log()[len(log_before):])


def test_rows_that_every_worker_died_on_fail_with_worker_died(tiny_model_dirs, tmp_path):
    with ServerProcess(tiny_model_dirs['hf'], num_worker=2, log_dir=tmp_path) as server, \
            server.client() as observer, server.client() as victim:
        pids = worker_pids(observer)
        with frozen(pids.values()):
            victim.encode(['rows that seem to kill workers'] * 4, blocking=False)  # one batch
            assert wait_until(lambda: any(batches_held(observer).values()))
            first = next(worker_id for worker_id, held in batches_held(observer).items() if held)
            os.kill(pids[first], signal.SIGKILL)
            second = 1 - first  # the one ready worker left gets the rows again
            assert wait_until(lambda: batches_held(observer)[second] > 0), 'the rows were not run again'
            os.kill(pids[second], signal.SIGKILL)
            with pytest.raises(ServerError, match='died repeatedly') as raised:
                next(victim.fetch())
            assert raised.value.error_type == 'WorkerDied'
        assert wait_until(lambda: observer.server_status['statistic']['num_ready_worker'] == 2)
        assert observer.server_status['statistic']['num_worker_restart'] == 2
        assert observer.encode(['the replacements serve']).shape == (1, 32)
        assert 'was running on every worker that died' in server.log()


def test_a_flood_gets_server_busy_fast_then_service_resumes(tiny_model_dirs, tmp_path):
    with ServerProcess(tiny_model_dirs['hf'], '-max_queued_rows', 1000, '-max_batch_size', 8,
                       log_dir=tmp_path) as server:
        with server.client() as client:
            for _ in range(20):
                client.encode([f'flood {i}' for i in range(400)], blocking=False)
            errors, served = 0, 0
            for _ in range(20):
                try:
                    next(client.fetch())
                    served += 1
                except ServerError as error:
                    assert error.error_type == 'ServerBusy'
                    errors += 1
            assert errors > 0 and served > 0
            with pytest.raises(ServerError, match='max_queued_rows'):
                client.encode(['x'] * 1001)
            assert client.encode(['after the flood']).shape == (1, 32)


def test_hostile_sentences_get_a_result_or_a_clear_error(tiny_model_dirs, tmp_path):
    with ServerProcess(tiny_model_dirs['hf'], log_dir=tmp_path) as server:
        with server.client() as client:
            huge = 'word ' * 200_000  # 1 MB
            assert client.encode([huge, 'short']).shape == (2, 32)
            many = client.encode([f's{i}' for i in range(100_000)])
            assert many.shape == (100_000, 32)
            assert client.encode(['\x00\x01 control only ', '😀 ©']).shape == (2, 32)
            with pytest.raises(ValueError):
                client.encode(['fine', '   '])
            with pytest.raises(TypeError):
                client.encode(['fine', 3])


def test_a_dead_sink_brings_the_server_down_cleanly(tiny_model_dirs, tmp_path):
    with ServerProcess(tiny_model_dirs['hf'], log_dir=tmp_path) as server:  # stopped there if it stays up
        os.kill(sink_pid(server), signal.SIGKILL)
        assert server.process.wait(20) == 1
        assert not server.wait_for_no_processes()
        assert 'the sink process died' in server.log()


def test_a_killed_server_process_leaves_no_orphans(tiny_model_dirs, tmp_path):
    server = ServerProcess(tiny_model_dirs['hf'], num_worker=2, log_dir=tmp_path)
    assert len(server.child_pids()) >= 4
    os.kill(server.process.pid, signal.SIGKILL)  # the ventilator dies with its process
    server.process.wait(10)
    assert not server.wait_for_no_processes(timeout=10), 'children outlived the server process'


def test_a_client_that_leaves_mid_request_leaves_nothing_behind(tiny_model_dirs, tmp_path):
    with ServerProcess(tiny_model_dirs['hf'], '-max_batch_size', 32, log_dir=tmp_path) as server, \
            server.client() as observer:
        leaving = [server.client() for _ in range(3)]
        for client in leaving:
            client.encode([f'abandoned {i}' for i in range(2000)], blocking=False)
        # the requests have reached the server...
        wait_until(lambda: observer.server_status['statistic']['num_data_request'] >= 3, timeout=30)
        for client in leaving:  # ...and their clients go away while they run
            client.close()

        def drained():
            statistic = observer.server_status['statistic']
            return statistic['num_pending_job'] == 0 and statistic['num_queued_row'] == 0

        assert wait_until(drained)
        assert observer.server_status['statistic']['num_published_result'] >= 3
        assert observer.encode(['still fine']).shape == (1, 32)


def test_a_worker_that_keeps_dying_is_given_up_and_clients_are_told(tiny_model_dirs, tmp_path):
    with ServerProcess(tiny_model_dirs['hf'], log_dir=tmp_path) as server, server.client() as client:
        for death in range(4):  # the first death and three replacements
            victim = worker_pids(client)[0]
            os.kill(victim, signal.SIGKILL)
            if death < 3:
                assert wait_until(lambda: worker_pids(client)[0] != victim), 'the worker was not replaced'
        assert wait_until(lambda: client.server_status['statistic']['num_failed_worker'] == 1)
        assert client.server_status['statistic']['num_worker_restart'] == 3
        with pytest.raises(ServerError, match='no worker') as raised:
            client.encode(['anyone there?'])
        assert raised.value.error_type == 'NoWorker'
        assert 'not restarting it again' in server.log()


def _loaded_tensorflow(pid: int) -> bool:
    with open(f'/proc/{pid}/maps') as maps:
        return 'libtensorflow_framework' in maps.read()


def test_workers_load_tensorflow_before_their_config_and_a_start_given_up_stops_them_at_once():
    from bert_serving.server.supervisor import Supervisor

    supervisor = Supervisor(range(2), logging.getLogger('test'))
    supervisor.spawn_workers()  # what the server does before it builds the graph
    pids = [supervisor.worker_pid(worker_id) for worker_id in range(2)]
    try:
        assert wait_until(lambda: all(map(_loaded_tensorflow, pids)), timeout=90)
        assert all(process.is_alive() for process in supervisor.workers.values())  # waiting for their config
    finally:
        started = time.monotonic()
        supervisor.stop()
    assert not any(process.is_alive() for process in supervisor.workers.values())
    assert time.monotonic() - started < 3  # not the 5 s given to workers that serve
