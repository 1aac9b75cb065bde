/**
 * GET /metrics over a real socket: the operator's bearer token, the
 * Prometheus text format, and values that follow from what the test did
 * (pushes, export deliveries to a real HTTP receiver, offline runs, a
 * failing transform).
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { errorCode, fresh, makeRepo, push, type TestServer } from './helpers.ts';
import { startReceiver, waitFor, type Receiver } from './exports-helpers.ts';
import { jsonl, ok, putObject, startOffline, type OfflineServer } from './offline-helpers.ts';

const TOKEN = 'operator-token-0123456789';

/** GET /metrics on the listening server with the given Authorization header (none when undefined). */
async function scrape(s: TestServer, authorization?: string): Promise<{ status: number; type: string | null; body: string }> {
  const { port } = s.app.server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: authorization === undefined ? {} : { authorization } });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

const LABEL = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"`;
const SAMPLE = new RegExp(String.raw`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:${LABEL})(?:,${LABEL})*,?\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-][Ii]nf)$`);
const COMMENT = /^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$/;

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses the text exposition, failing on any line that is neither a comment nor a sample. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      assert.match(line, COMMENT);
      continue;
    }
    const m = SAMPLE.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').slice(1, -1).matchAll(new RegExp(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\]|\\\\.)*)"`, 'g'))) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample with this name whose labels include `labels`; undefined when absent. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  assert.ok(hits.length <= 1, `${name} ${JSON.stringify(labels)} matches ${hits.length} samples`);
  return hits[0]?.value;
}

describe('GET /metrics without a configured token', () => {
  let s: OfflineServer;
  before(async () => {
    s = await startOffline();
    await s.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(() => s.close());

  it('answers 404 like an unknown route, with or without a bearer token', async () => {
    for (const auth of [undefined, `Bearer ${TOKEN}`]) {
      const r = await scrape(s, auth);
      assert.equal(r.status, 404);
      assert.equal(r.type, 'application/json');
      assert.deepEqual(JSON.parse(r.body), { error: 'not found: GET /metrics' });
    }
  });
});

describe('GET /metrics with metricsToken', () => {
  let s: OfflineServer;
  let rx: Receiver;
  before(async () => {
    s = await startOffline({ metricsToken: TOKEN, exportRetryMin: '10ms', exportRetryMax: '20ms' });
    await s.app.listen({ port: 0, host: '127.0.0.1' });
    rx = await startReceiver();
  });
  after(async () => {
    await s.close();
    await rx.close();
  });
  const metrics = async (): Promise<Sample[]> => {
    const r = await scrape(s, `Bearer ${TOKEN}`);
    assert.equal(r.status, 200, r.body);
    assert.match(r.type ?? '', /^text\/plain; version=0\.0\.4/);
    return parse(r.body);
  };

  it('refuses a missing, wrong or account-signed Authorization with 401 in the error shape', async () => {
    const signed = await s.call({ method: 'GET', url: '/metrics' }); // a valid account signature is not the operator's token
    assert.equal(signed.statusCode, 401);
    assert.match(JSON.parse(signed.body).error, /^unauthorized: malformed Authorization header/);
    for (const [auth, why] of [[undefined, /missing Authorization/], [`Bearer ${TOKEN}x`, /wrong metrics token/], [`Bearer ${TOKEN.slice(0, -1)}`, /wrong metrics token/], [TOKEN, /malformed/]] as const) {
      const r = await scrape(s, auth);
      assert.equal(r.status, 401, String(auth));
      assert.equal(r.type, 'application/json');
      assert.match(JSON.parse(r.body).error, why);
      assert.doesNotMatch(r.body, /pipeline_/);
    }
  });

  it('serves the text format with process metrics and HTTP requests labelled by route pattern, never by path', async () => {
    const repo = await makeRepo(s);
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${repo}` })).statusCode, 200);
    await s.call({ method: 'GET', url: `/v2/${fresh('nowhere')}` });
    const m = await metrics();
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']) assert.ok(value(m, name) !== undefined, name);
    assert.ok((value(m, 'pipeline_http_requests_total', { route: '/v2/repos/:repo', method: 'GET', status: '2xx' }) ?? 0) >= 1);
    assert.ok((value(m, 'pipeline_http_requests_total', { route: '(unmatched)', method: 'GET', status: '4xx' }) ?? 0) >= 1);
    assert.ok((value(m, 'pipeline_http_request_duration_seconds_count', { route: '/v2/repos/:repo', method: 'GET', status: '2xx' }) ?? 0) >= 1);
    const routes = new Set(m.filter((x) => x.name.startsWith('pipeline_http_')).map((x) => x.labels.route));
    for (const r of routes) assert.doesNotMatch(r ?? '', /repo_|nowhere/, `a resource name in route label ${r}`);
  });

  it('counts points and bytes pushed to a repo, and refused pushes by error code', async () => {
    const repo = await makeRepo(s);
    const bodies = ['host=a\tlatency=1\nhost=b\tlatency=2\nhost=c', 'host=d\nhost=e'];
    for (const b of bodies) assert.equal((await push(s, repo, b)).statusCode, 200);
    const bad = await push(s, repo, 'latency=3'); // host is required
    const code = errorCode(bad);
    const before = value(await metrics(), 'pipeline_ingest_rejected_total', { code: 'E18102' }) ?? 0;
    assert.equal(errorCode(await push(s, fresh('missing'), 'host=a')), 'E18102');
    const m = await metrics();
    assert.equal(value(m, 'pipeline_ingest_points_total', { account: 'alice', repo }), 5);
    assert.equal(value(m, 'pipeline_ingest_bytes_total', { account: 'alice', repo }), Buffer.byteLength(bodies.join('')));
    assert.ok((value(m, 'pipeline_ingest_rejected_total', { code }) ?? 0) >= 1, code);
    assert.equal(value(m, 'pipeline_ingest_rejected_total', { code: 'E18102' }), before + 1);
    assert.equal(m.filter((x) => x.name === 'pipeline_ingest_rejected_total' && x.labels.repo !== undefined).length, 0);

    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${repo}` })).statusCode, 200);
    assert.equal(value(await metrics(), 'pipeline_ingest_points_total', { account: 'alice', repo }), undefined, 'a deleted repo leaves the exposition');
  });

  it('shows what an export delivered to a real HTTP receiver, its failed and retried deliveries and its lag', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    let refusals = 2;
    rx.respond = () => (refusals-- > 0 ? 503 : 200);
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', whence: 'oldest', spec: { host: rx.host, uri: '/in' } } });
    assert.equal(res.statusCode, 200, res.body);
    const lines = Array.from({ length: 7 }, (_, i) => `host=h${i}`).join('\n');
    assert.equal((await push(s, repo, lines)).statusCode, 200);
    const labels = { account: 'alice', repo, export: name };
    await waitFor(async () => value(await metrics(), 'pipeline_export_delivered_points_total', labels) === 7, 'the export metric to show 7 delivered points');
    const m = await metrics();
    assert.equal(rx.lines().length, 7);
    assert.equal(value(m, 'pipeline_export_failures_total', labels), 2);
    assert.equal(value(m, 'pipeline_export_retries_total', labels), 2);
    assert.equal(value(m, 'pipeline_export_consecutive_failures', labels), 0);
    assert.equal(value(m, 'pipeline_export_lag_points', labels), 0);
    assert.equal(value(m, 'pipeline_export_dead_lettered_points_total', labels), 0);
    assert.equal(value(m, 'pipeline_export_state', { ...labels, type: 'http', state: 'running' }), 1);
    const status = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${name}` })).body).status;
    assert.equal(status.delivered.total, 7, 'the same total as GET');
  });

  it('counts offline runs by final status per job, and shows the queue', async () => {
    const b = fresh('bkt').replaceAll('_', '-');
    putObject(s, b, 'logs/a.json', jsonl([{ host: 'a', n: 1 }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { region: 'nb', type: 'kodo', spec: { bucket: b, keyPrefixes: ['logs/'], fileType: 'json' } });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, {
      srcs: [{ name: ds, type: 'DataSource', tableName: 'logs' }], computation: { code: 'SELECT host, sum(n) AS total FROM logs GROUP BY host', type: 'SQL' },
      container: { type: 'M16C4', count: 1 }, scheduler: { type: 'manual' },
    });
    const labels = { account: 'alice', job, status: 'Successful' };
    assert.equal(value(await metrics(), 'pipeline_offline_runs_total', labels), undefined);
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    await s.offline.scheduler.idle();
    assert.equal(value(await metrics(), 'pipeline_offline_runs_total', labels), 1);
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    await s.offline.scheduler.idle();
    const m = await metrics();
    assert.equal(value(m, 'pipeline_offline_runs_total', labels), 2);
    assert.equal(value(m, 'pipeline_offline_runs_total', { ...labels, status: 'Failed' }), undefined);
    assert.equal(value(m, 'pipeline_offline_runs_active', { account: 'alice', job, status: 'Running' }), undefined);
    assert.equal(value(m, 'pipeline_offline_queue_length'), 0);
    assert.equal(value(m, 'pipeline_offline_running'), 0);
  });

  it('shows a failing transform: its failed runs, error state and the points it is behind', async () => {
    const src = await makeRepo(s);
    const dest = fresh('dest');
    const name = fresh('t');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/${name}/to/${dest}`, body: { mode: 'sql', code: `select host, cast(region as bigint) as r from ${src}`, interval: '5m' } });
    assert.equal(res.statusCode, 200, res.body);
    await push(s, src, 'host=a\tregion=12\nhost=b\tregion=not-a-number');
    await s.ctx.runner.runNow('alice', src, name);
    const labels = { account: 'alice', repo: src, transform: name };
    const m = await metrics();
    assert.equal(value(m, 'pipeline_transform_runs_total', labels), 1);
    assert.equal(value(m, 'pipeline_transform_failures_total', labels), 1);
    assert.equal(value(m, 'pipeline_transform_lag_points', labels), 2);
    assert.equal(value(m, 'pipeline_transform_state', { ...labels, state: 'error' }), 1);
    assert.ok((value(m, 'pipeline_transform_last_run_timestamp_seconds', labels) ?? 0) > Date.now() / 1000 - 3600);
  });
});

describe('metricsToken configuration', () => {
  it('refuses a short token or one with spaces, with every other problem', () => {
    for (const t of ['short', 'has a space in the token 0123']) {
      assert.throws(() => loadConfig({ PIPELINE_METRICS_TOKEN: t }), /metricsToken: 16 to 256 printable characters/);
    }
    assert.equal(loadConfig({ PIPELINE_METRICS_TOKEN: TOKEN }).metricsToken, TOKEN);
    assert.equal(loadConfig({}).metricsToken, '');
  });
});
