// Live view of a bert-serving HTTP proxy: polls /status/server and /metrics, no libraries, no build step.
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  const POLL_MS = Math.max(200, Number(params.get('interval')) || 2000);
  const TOKEN = params.get('token');
  const HISTORY = 150;                                  // samples kept for the charts
  const ENCODE_ENDPOINTS = ['/encode', '/v1/embeddings', '/classify', '/rerank'];
  const STORE_KEY = 'bert-serving-dashboard-server';

  const $ = (id) => document.getElementById(id);
  let serverUrl = params.get('server') || localStorage.getItem(STORE_KEY) || 'http://localhost:8125';
  let previous = null;                                  // last sample, for rates
  let history = [];
  let timer = null;
  let polls = 0;

  // ---- fetching and parsing ------------------------------------------------------------

  async function get(path) {
    const headers = TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {};
    const response = await fetch(serverUrl.replace(/\/+$/, '') + path, { headers, cache: 'no-store' });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).error || detail; } catch (_) { /* not JSON */ }
      throw new Error(`${path}: HTTP ${response.status} ${detail}`);
    }
    return response;
  }

  /** Prometheus text format -> [{name, labels, value}] (comments skipped). */
  function parseMetrics(text) {
    const samples = [];
    const line = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
    const label = /(\w+)="((?:[^"\\]|\\.)*)"/g;
    for (const row of text.split('\n')) {
      const match = line.exec(row);
      if (!match) continue;
      const labels = {};
      for (const [, key, value] of (match[2] || '').matchAll(label)) labels[key] = value;
      samples.push({ name: match[1], labels, value: Number(match[3]) });
    }
    return samples;
  }

  function total(samples, name, keep = () => true) {
    return samples.filter((s) => s.name === name && keep(s.labels)).reduce((sum, s) => sum + s.value, 0);
  }

  /** Cumulative bucket counts of the encode latency histogram: {le: count}. */
  function latencyBuckets(samples) {
    const buckets = {};
    for (const s of samples) {
      if (s.name === 'bert_http_request_duration_seconds_bucket' && ENCODE_ENDPOINTS.includes(s.labels.endpoint)) {
        buckets[s.labels.le] = (buckets[s.labels.le] || 0) + s.value;
      }
    }
    return buckets;
  }

  /** Quantile q of the requests between two bucket snapshots, interpolated within a bucket as Prometheus does. */
  function quantile(now, before, q) {
    const bounds = Object.keys(now).map((le) => [le === '+Inf' ? Infinity : Number(le), le]).sort((a, b) => a[0] - b[0]);
    const counts = bounds.map(([, le]) => now[le] - ((before && before[le]) || 0));
    const count = counts[counts.length - 1];
    if (!count) return null;
    const rank = q * count;
    for (let i = 0; i < bounds.length; i++) {
      if (counts[i] >= rank) {
        const upper = bounds[i][0];
        const lower = i ? bounds[i - 1][0] : 0;
        if (upper === Infinity) return lower;
        const below = i ? counts[i - 1] : 0;
        return lower + (upper - lower) * ((rank - below) / Math.max(counts[i] - below, 1));
      }
    }
    return null;
  }

  // ---- one poll -------------------------------------------------------------------------

  function sample(status, metrics) {
    const encodes = (labels) => ENCODE_ENDPOINTS.includes(labels.endpoint);
    return {
      time: performance.now() / 1000,
      sentences: status.statistic.num_total_seq,
      latencySum: total(metrics, 'bert_http_request_duration_seconds_sum', encodes),
      latencyCount: total(metrics, 'bert_http_request_duration_seconds_count', encodes),
      buckets: latencyBuckets(metrics),
      errors: total(metrics, 'bert_http_errors_total'),
      classifyRequests: total(metrics, 'bert_http_requests_total', (l) => l.endpoint === '/classify'),
      rerankRequests: total(metrics, 'bert_http_requests_total', (l) => l.endpoint === '/rerank'),
      predictions: Object.fromEntries(metrics.filter((s) => s.name === 'bert_http_predictions_total')
        .map((s) => [s.labels.label, s.value])),
    };
  }

  function rates(now, before) {
    if (!before) return { throughput: null, latency: null, p99: null };
    const seconds = Math.max(now.time - before.time, 1e-3);
    const finished = now.latencyCount - before.latencyCount;
    return {
      throughput: Math.max(0, now.sentences - before.sentences) / seconds,
      latency: finished > 0 ? 1000 * (now.latencySum - before.latencySum) / finished : null,
      p99: finished > 0 ? 1000 * quantile(now.buckets, before.buckets, 0.99) : null,
    };
  }

  async function poll() {
    clearTimeout(timer);
    try {
      const [status, metricsText] = await Promise.all([
        get('/status/server').then((r) => r.json()),
        get('/metrics').then((r) => r.text()),
      ]);
      const now = sample(status, parseMetrics(metricsText));
      const rate = rates(now, previous);
      previous = now;
      if (rate.throughput !== null) {
        history.push({ at: Date.now(), ...rate });
        history = history.slice(-HISTORY);
      }
      render(status, now, rate);
      $('message').hidden = true;
    } catch (error) {
      setState('down', 'unreachable');
      $('message').textContent = `Cannot read ${serverUrl}: ${error.message}. Is the proxy running with -http_port, ` +
        'and does its -cors allow this page?';
      $('message').hidden = false;
    } finally {
      polls += 1;
      document.body.dataset.polls = String(polls);
      timer = setTimeout(poll, POLL_MS);
    }
  }

  // ---- rendering ------------------------------------------------------------------------

  const format = (value, digits = 1) =>
    value === null || value === undefined || Number.isNaN(value) ? '–'
      : Number(value).toLocaleString('en-US', { maximumFractionDigits: digits });

  function setState(kind, text) {
    $('state').className = 'state ' + kind;
    $('state').textContent = text;
  }

  /** Replace the body of table ``id`` with one row per list of cell texts. */
  function fillRows(id, rows) {
    $(id).querySelector('tbody').replaceChildren(...rows.map((texts) => {
      const row = document.createElement('tr');
      for (const text of texts) {
        const cell = document.createElement('td');
        cell.textContent = String(text);
        row.appendChild(cell);
      }
      return row;
    }));
  }

  /** A key/value table: numbers formatted, objects as JSON. */
  function fillTable(id, entries) {
    fillRows(id, entries.map(([key, value]) => [key, typeof value === 'number' ? format(value, 3)
      : typeof value === 'object' && value !== null ? JSON.stringify(value) : value]));
  }

  /** One row per worker process: its id, pid, whether its model is loaded, and the work it was given. */
  function fillWorkers(workers) {
    fillRows('worker-table', workers.map((worker) => [worker.id, worker.pid ?? '–',
      worker.ready ? 'ready' : 'starting', worker.in_flight, format(worker.forward_passes), format(worker.rows)]));
  }

  /** A -task classify server's labels, with how many texts /classify gave each as the best one. */
  function fillClassifier(status, now) {
    $('classifier').hidden = status.task !== 'classify';
    if (status.task !== 'classify') return;
    $('classify-requests').textContent = format(now.classifyRequests);
    $('rerank-requests').textContent = format(now.rerankRequests);
    $('rerank-label').textContent = status.rerank_label ?? 'none (not a pair classifier)';
    const counts = (status.labels || []).map((label) => now.predictions[label] || 0);
    const sum = counts.reduce((a, b) => a + b, 0);
    fillRows('label-table', (status.labels || []).map((label, i) =>
      [label, format(counts[i], 0), sum ? format(100 * counts[i] / sum) + ' %' : '–']));
  }

  function render(status, now, rate) {
    const stats = status.statistic;
    const ready = stats.num_ready_worker >= status.num_worker;
    setState(ready ? 'up' : 'starting', ready ? 'ready' : `starting (${stats.num_ready_worker}/${status.num_worker})`);
    const numbers = {
      'num-total-seq': stats.num_total_seq, 'num-data-request': stats.num_data_request,
      'num-forward-pass': stats.num_forward_pass, 'rows-per-pass': stats.avg_rows_per_forward_pass,
      'num-queued-row': stats.num_queued_row, 'num-pending-job': stats.num_pending_job,
      'num-worker-restart': stats.num_worker_restart, 'num-active-client': stats.num_active_client,
      'num-total-client': stats.num_total_client, 'http-errors': now.errors,
      'throughput': rate.throughput, 'latency': rate.latency, 'latency-p99': rate.p99,
    };
    for (const [id, value] of Object.entries(numbers)) $(id).textContent = format(value);
    $('workers').textContent = `${stats.num_ready_worker} / ${status.num_worker}`;
    const config = Object.entries(status).filter(([key]) => key !== 'statistic').sort();
    fillTable('config-table', config);
    fillTable('statistic-table', Object.entries(stats).filter(([key]) => key !== 'workers').sort());
    fillWorkers(stats.workers || []);
    fillClassifier(status, now);
    drawChart($('throughput-chart'), [{ values: history.map((h) => h.throughput), colour: '#2f6fdb' }]);
    drawChart($('latency-chart'), [
      { values: history.map((h) => h.latency), colour: '#1e8e4f' },
      { values: history.map((h) => h.p99), colour: '#c0392b' },
    ]);
    $('updated').textContent = new Date().toLocaleTimeString();
  }

  /** Line chart of one or more series (null = gap) on a canvas, y from 0, the newest sample on the right. */
  function drawChart(canvas, series) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext('2d');
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, height);
    const pad = { left: 48, right: 8, top: 8, bottom: 18 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const values = series.flatMap((s) => s.values).filter((v) => v !== null);
    const peak = Math.max(0, ...values);
    const top = niceCeiling(Math.max(1, peak));
    canvas.dataset.peak = String(peak);
    canvas.setAttribute('aria-label', `peak ${format(peak)} over the last ${values.length} samples`);

    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#66707c';
    ctx.strokeStyle = '#dde2e8';
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = pad.top + plotH * (1 - i / 4);
      ctx.beginPath();
      ctx.moveTo(pad.left, y);
      ctx.lineTo(width - pad.right, y);
      ctx.stroke();
      ctx.fillText(format(top * i / 4, 2), 4, y + 4);
    }
    const seconds = Math.round(HISTORY * POLL_MS / 1000);
    ctx.fillText(`last ${seconds} s`, pad.left, height - 4);
    if (!values.length) {
      ctx.fillText('waiting for data…', pad.left + plotW / 2 - 40, pad.top + plotH / 2);
      return;
    }
    const step = plotW / Math.max(HISTORY - 1, 1);
    for (const { values: points, colour } of series) {
      ctx.strokeStyle = ctx.fillStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      let drawing = false;
      points.forEach((value, i) => {
        if (value === null) { drawing = false; return; }
        const x = pad.left + plotW - (points.length - 1 - i) * step;
        const y = pad.top + plotH * (1 - value / top);
        if (drawing) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        ctx.fillRect(x - 2, y - 2, 4, 4);  // a lone sample between idle gaps still shows
        drawing = true;
      });
      ctx.stroke();
    }
  }

  function niceCeiling(value) {
    const magnitude = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((v) => v >= value);
  }

  // ---- wiring ---------------------------------------------------------------------------

  function connect(url) {
    serverUrl = url;
    localStorage.setItem(STORE_KEY, url);
    previous = null;
    history = [];
    setState('unknown', 'connecting…');
    poll();
  }

  $('server-url').value = serverUrl;
  $('connect').addEventListener('submit', (event) => {
    event.preventDefault();
    connect($('server-url').value.trim());
  });
  connect(serverUrl);
})();
