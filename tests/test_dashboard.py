"""plugin/dashboard in headless Chromium, against a live server behind the HTTP proxy.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``), so no
driver or websocket package is needed. ``make browser`` installs Debian's chromium.
"""

import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from classifiers import write_classifier
from servers import ServerProcess, free_port
from test_http import ProxyProcess, call

pytestmark = pytest.mark.slow
CLASSIFIER_LABELS = ['maybe', 'no', 'yes']

DASHBOARD = Path(__file__).resolve().parent.parent / 'plugin' / 'dashboard'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
if CHROMIUM is None:
    pytest.skip('chromium is not installed and `make browser` could not install it (apt-get install chromium)',
                allow_module_level=True)


class Chromium:
    """Headless Chromium with one page, driven over the DevTools protocol on fds 3 (in) and 4 (out)."""

    FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--remote-debugging-pipe', '--window-size=1280,1000')

    def __init__(self, user_data_dir):
        commands_in, self._commands = os.pipe()
        self._replies, replies_out = os.pipe()

        def move_pipe_ends():
            """In the child: the pipe ends become fds 3 and 4, the only fds beyond stdio that survive exec."""
            ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands_in, replies_out)]
            for target, fd in zip((3, 4), ends):
                os.dup2(fd, target)

        self.process = subprocess.Popen([CHROMIUM, *self.FLAGS, f'--user-data-dir={user_data_dir}'],
                                        close_fds=False, preexec_fn=move_pipe_ends,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_in)
        os.close(replies_out)
        self._buffer = b''
        self._last_id = 0
        target = self.send('Target.createTarget', url='about:blank')['targetId']
        self._session = self.send('Target.attachToTarget', targetId=target, flatten=True)['sessionId']

    def send(self, method, session=None, timeout=30, **params) -> dict:
        """Run one DevTools command and return its result (events in between are dropped)."""
        self._last_id += 1
        message = {'id': self._last_id, 'method': method, 'params': params}
        if session:
            message['sessionId'] = session
        os.write(self._commands, json.dumps(message).encode() + b'\0')
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next_message(deadline)
            if reply.get('id') == self._last_id:
                if 'error' in reply:
                    raise RuntimeError(f'{method} failed: {reply["error"]}')
                return reply['result']

    def _next_message(self, deadline) -> dict:
        while b'\0' not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise TimeoutError('chromium did not answer')
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise RuntimeError(f'chromium closed the pipe (exit code {self.process.poll()})')
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b'\0', 1)
        return json.loads(message)

    def open(self, url):
        """Load ``url`` and wait until its document (scripts included) has loaded."""
        self.send('Page.navigate', session=self._session, url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def evaluate(self, expression):
        result = self.send('Runtime.evaluate', session=self._session, expression=expression, returnByValue=True)
        if 'exceptionDetails' in result:
            raise RuntimeError(f'{expression}: {result["exceptionDetails"]}')
        return result['result'].get('value')

    def wait_for(self, expression, timeout=30):
        """The value of ``expression`` once truthy; fails with the page's state after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        state = self.evaluate("document.body ? document.body.innerText.slice(0, 500) : document.readyState")
        raise AssertionError(f'timed out waiting for {expression}; the page shows: {state}')

    def screenshot(self, path: Path):
        data = self.send('Page.captureScreenshot', session=self._session, format='png')['data']
        path.write_bytes(base64.b64decode(data))

    def close(self):
        try:
            self.send('Browser.close', timeout=5)
            self.process.wait(10)
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


@pytest.fixture(scope='module')
def proxy(tiny_model_dirs, tmp_path_factory):
    logs = tmp_path_factory.mktemp('logs')
    with ServerProcess(tiny_model_dirs['hf'], log_dir=logs) as server, \
            ProxyProcess.in_front_of(server, log_dir=logs) as running:
        yield running


@pytest.fixture(scope='module')
def dashboard_url():
    """plugin/dashboard served as static files, as a user would (a different origin than the proxy)."""
    handler = functools.partial(QuietHandler, directory=str(DASHBOARD))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{server.server_port}/index.html'
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def browser(tmp_path):
    chromium = Chromium(tmp_path / 'profile')
    yield chromium
    chromium.close()


def number(browser, element_id) -> float:
    return float(browser.evaluate(f"document.getElementById('{element_id}').textContent").replace(',', ''))


def test_dashboard_shows_live_numbers_that_change_after_an_encode(proxy, dashboard_url, browser, tmp_path):
    browser.open(f'{dashboard_url}?server={proxy.url}&interval=300')
    assert browser.wait_for("document.getElementById('state').textContent === 'ready' && "
                            "Number(document.body.dataset.polls) >= 2")
    assert browser.evaluate("document.getElementById('server-url').value") == proxy.url
    assert browser.evaluate("document.getElementById('workers').textContent") == '1 / 1'
    assert browser.evaluate("document.querySelectorAll('#config-table tr').length") > 10
    sentences, requests = number(browser, 'num-total-seq'), number(browser, 'num-data-request')

    texts = [f'sentence number {i} for the dashboard' for i in range(40)]
    assert call(proxy.url + '/encode', {'id': 1, 'texts': texts}).status == 200
    browser.wait_for(f"Number(document.getElementById('num-total-seq').textContent.replace(/,/g, '')) "
                     f">= {sentences + len(texts)}")
    assert number(browser, 'num-data-request') >= requests + 1
    # The poll that saw the encode put a throughput and a latency point above zero on the charts.
    browser.wait_for("Number(document.getElementById('throughput-chart').dataset.peak) > 0 && "
                     "Number(document.getElementById('latency-chart').dataset.peak) > 0", timeout=5)
    worker = call(proxy.url + '/status/server').json()['statistic']['workers'][0]
    cells = "[...document.querySelectorAll('#worker-table tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
    browser.wait_for(f"{cells}.length === 1 && Number({cells}[0][5].replace(/,/g, '')) >= {worker['rows']}")
    assert browser.evaluate(cells)[0][:3] == ['0', str(worker['pid']), 'ready']
    browser.screenshot(tmp_path / 'dashboard.png')
    assert (tmp_path / 'dashboard.png').stat().st_size > 10_000


def test_dashboard_says_when_the_proxy_is_unreachable(dashboard_url, browser, tmp_path):
    dead = f'http://127.0.0.1:{free_port()}'
    browser.open(f'{dashboard_url}?server={dead}&interval=300')
    browser.wait_for("document.getElementById('state').textContent === 'unreachable'")
    assert dead in browser.evaluate("document.getElementById('message').textContent")
    browser.screenshot(tmp_path / 'unreachable.png')


@pytest.fixture(scope='module')
def classify_proxy(tiny_model_dirs, tiny_config, tmp_path_factory):
    """A -task classify server on a fine-tuned tiny classifier, behind the proxy."""
    tuned, logs = tmp_path_factory.mktemp('tuned'), tmp_path_factory.mktemp('logs')
    write_classifier(tuned, tiny_config, CLASSIFIER_LABELS)
    with ServerProcess(tiny_model_dirs['google'], '-tuned_model_dir', tuned, '-ckpt_name', 'model.ckpt-7',
                       '-task', 'classify', log_dir=logs) as server, \
            ProxyProcess.in_front_of(server, log_dir=logs) as running:
        yield running


def test_dashboard_shows_the_labels_a_classifier_gave(classify_proxy, proxy, dashboard_url, browser, tmp_path):
    browser.open(f'{dashboard_url}?server={proxy.url}&interval=300')
    browser.wait_for("Number(document.body.dataset.polls) >= 1")
    assert browser.evaluate("document.getElementById('classifier').hidden") is True  # an encode server

    texts = [f'sentence number {i} to classify' for i in range(12)]
    best = [row[0]['label'] for row in call(classify_proxy.url + '/classify', {'texts': texts}).json()]
    assert call(classify_proxy.url + '/rerank', {'query': 'q', 'texts': texts[:3]}).status == 200
    browser.open(f'{dashboard_url}?server={classify_proxy.url}&interval=300')
    rows = "[...document.querySelectorAll('#label-table tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
    browser.wait_for(f"!document.getElementById('classifier').hidden && {rows}.length === 3")
    assert [row[:2] for row in browser.evaluate(rows)] == [[label, str(best.count(label))]
                                                          for label in CLASSIFIER_LABELS]
    assert browser.evaluate("document.getElementById('rerank-label').textContent") == 'yes'
    assert browser.evaluate("document.getElementById('classify-requests').textContent") == '1'
    assert browser.evaluate("document.getElementById('rerank-requests').textContent") == '1'
    browser.screenshot(tmp_path / 'classifier.png')
