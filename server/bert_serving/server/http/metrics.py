"""The proxy's Prometheus metrics: its own HTTP counters plus gauges read from the server's status."""
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .errors import ApiError

LATENCY_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The proxy's own Prometheus registry: HTTP counters plus gauges read from the server's status."""

    def __init__(self, server_status):
        self.registry = CollectorRegistry()
        self.requests = Counter('bert_http_requests', 'HTTP requests answered, by endpoint and status',
                                ['endpoint', 'method', 'status'], registry=self.registry)
        self.latency = Histogram('bert_http_request_duration_seconds', 'Time to answer an HTTP request',
                                 ['endpoint'], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter('bert_http_errors', 'HTTP requests answered with an error, by kind', ['kind'],
                              registry=self.registry)
        self.sentences = Counter('bert_http_sentences', 'Sentences encoded through the proxy',
                                 registry=self.registry)
        self.predictions = Counter('bert_http_predictions', 'Texts /classify gave each label as the best one',
                                   ['label'], registry=self.registry)
        self.tokens = Counter('bert_http_tokens', 'Tokens encoded (source: server tokenization or whitespace)',
                              ['source'], registry=self.registry)
        self.registry.register(ServerCollector(server_status))


class ServerCollector:
    """Reads the server's SHOW_STATUS at each scrape; ``bert_server_up`` is 0 when it does not answer."""

    COUNTERS = {'num_data_request': 'data_requests', 'num_total_seq': 'sequences', 'num_forward_pass': 'forward_passes',
                'num_bad_request': 'bad_requests', 'num_error_reply': 'error_replies',
                'num_published_result': 'published_results', 'num_worker_restart': 'worker_restarts',
                'num_busy_reply': 'busy_replies'}
    GAUGES = {'num_queued_row': 'queued_rows', 'num_pending_job': 'pending_jobs',
              'num_ready_worker': 'ready_workers', 'num_active_client': 'active_clients',
              'avg_rows_per_forward_pass': 'rows_per_forward_pass_avg',
              'max_rows_per_forward_pass': 'rows_per_forward_pass_max',
              'avg_size_per_request': 'request_size_avg'}

    def __init__(self, server_status):
        self.server_status = server_status

    def describe(self):
        return []  # the names depend on what the server reports

    def collect(self):
        try:
            status = self.server_status()
        except ApiError:
            yield GaugeMetricFamily('bert_server_up', 'Whether the server answered the status request', 0)
            return
        yield GaugeMetricFamily('bert_server_up', 'Whether the server answered the status request', 1)
        yield GaugeMetricFamily('bert_server_workers', 'Worker processes configured', status.get('num_worker', 0))
        stats = status.get('statistic', {})
        for key, name in self.COUNTERS.items():
            if key in stats:
                yield CounterMetricFamily(f'bert_server_{name}', f'Server statistic {key}', stats[key])
        for key, name in self.GAUGES.items():
            if key in stats:
                yield GaugeMetricFamily(f'bert_server_{name}', f'Server statistic {key}', stats[key])
        yield from self._per_worker(stats.get('workers', []))

    @staticmethod
    def _per_worker(workers):
        """Forward passes, rows, readiness and batches in flight of each worker, labelled by its id."""
        families = [CounterMetricFamily('bert_server_worker_forward_passes', 'Forward passes given to the worker',
                                        labels=['worker']),
                    CounterMetricFamily('bert_server_worker_rows', 'Sentences given to the worker', labels=['worker']),
                    GaugeMetricFamily('bert_server_worker_ready', 'Whether the worker is loaded', labels=['worker']),
                    GaugeMetricFamily('bert_server_worker_in_flight', 'Batches the worker holds', labels=['worker'])]
        for worker in workers:
            label = [str(worker['id'])]
            for family, key in zip(families, ('forward_passes', 'rows', 'ready', 'in_flight')):
                family.add_metric(label, float(worker[key]))
        return families
