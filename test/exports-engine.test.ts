import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backoffDelay } from '../src/exports/shared/retry.ts';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { getExport, startReceiver, waitFor, type Receiver } from './exports-helpers.ts';

describe('export retry timing', () => {
  it('doubles the delay per attempt up to the cap, jitters within [base/2, base] and honours a longer Retry-After', () => {
    const o = { minMs: 100, maxMs: 1000 };
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelay(n, { ...o, random: () => 0.999999 })), [100, 200, 400, 800, 1000]);
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelay(n, { ...o, random: () => 0 })), [50, 100, 200, 400, 500]);
    assert.equal(backoffDelay(1, { ...o, random: () => 0 }, 700), 700);
    assert.equal(backoffDelay(1, { ...o, random: () => 0 }, 5000), 1000);
    assert.equal(backoffDelay(3, { ...o, random: () => 0.5 }, 10), 300);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(60, o);
      assert.ok(d >= 500 && d <= 1000, String(d));
    }
  });

  it('waits the backoff delays of the injected clock between attempts and never skips the failed batch', async () => {
    const s = await startServer({ exportRetryMin: '10ms', exportRetryMax: '50ms' });
    const rx = await startReceiver();
    try {
      const sleeps: number[] = [];
      let now = 1_700_000_000_000;
      s.ctx.exportEngine.setClock({ now: () => now, sleep: async (ms) => { sleeps.push(ms); now += ms; await new Promise((r) => setImmediate(r)); } }, () => 0.999999);
      const answers = [503, 503, { status: 429, headers: { 'retry-after': '1' } }, 500];
      rx.respond = () => answers.shift() ?? 200;
      const repo = await makeRepo(s);
      const name = fresh('ex');
      assert.equal((await push(s, repo, 'host=a\nhost=b')).statusCode, 200);
      assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host } } })).statusCode, 200);
      await waitFor(async () => (await getExport(s, repo, name)).status.delivered.total === 2, 'delivery');
      assert.deepEqual(sleeps, [10, 20, 50, 50]);
      assert.deepEqual(rx.requests.map((r) => r.body), Array(5).fill('host=a\nhost=b'));
      const st = (await getExport(s, repo, name)).status;
      assert.equal(st.lastSuccessTime, new Date(now).toISOString());
      assert.match(st.lastError, /500/);
    } finally {
      await s.close();
      await rx.close();
    }
  });
});

describe('export preview', () => {
  let s: TestServer;
  let rx: Receiver;
  before(async () => {
    s = await startServer();
    rx = await startReceiver();
  });
  after(async () => {
    await s.close();
    await rx.close();
  });

  it('renders the newest N points as the receiver would get them and sends nothing', async () => {
    const repo = await makeRepo(s);
    assert.equal((await push(s, repo, Array.from({ length: 15 }, (_, i) => `host=h${i}\tlatency=${i}`).join('\n'))).statusCode, 200);
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}/preview`, body: { type: 'http', spec: { host: rx.host, uri: '/p', format: 'json' }, count: 3 } });
    assert.equal(res.statusCode, 200, res.body);
    const p = JSON.parse(res.body);
    assert.equal(p.points, 3);
    assert.equal(p.from, 12);
    assert.deepEqual(p.rendered, { method: 'POST', url: `http://${rx.host}/p`, contentType: 'application/json', body: '{"host":"h12","latency":12}\n{"host":"h13","latency":13}\n{"host":"h14","latency":14}' });
    assert.deepEqual(p.rejected, []);
    assert.equal(rx.requests.length, 0);
  });

  it('previews a stored export without a body, 10 points by default, and refuses bad counts and specs', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    assert.equal((await push(s, repo, Array.from({ length: 12 }, (_, i) => `host=h${i}`).join('\n'))).statusCode, 200);
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}/preview` })), 'E18302');
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', whence: 'newest', spec: { host: rx.host, uri: '/stored' } } })).statusCode, 200);
    const p = JSON.parse((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}/preview` })).body);
    assert.equal(p.points, 10);
    assert.equal(p.rendered.contentType, 'text/plain');
    assert.equal(p.rendered.body.split('\n')[0], 'host=h2');
    for (const count of [0, 101, 'x', 1.5]) {
      assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}/preview`, body: { count } })), 'E18305');
    }
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}/preview`, body: { type: 'http', spec: { host: rx.host, format: 'csv' } } })), 'E18303');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/repos/nope_repo/exports/${name}/preview`, body: { type: 'http', spec: { host: rx.host } } })), 'E18102');
    await waitFor(() => true, 'nothing');
    assert.equal(rx.requests.filter((r) => r.url === '/stored').length, 0);
  });
});

describe('export outbound policy', () => {
  it('refuses a denied literal address at create and a name resolving to a denied address on connect', async () => {
    const s = await startServer({ exportDeny: '127.0.0.0/8,::1/128,169.254.0.0/16', exportRetryMin: '10ms', exportRetryMax: '20ms' });
    const rx = await startReceiver();
    try {
      const repo = await makeRepo(s);
      const port = rx.host.split(':')[1];
      const lit = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}`, body: { type: 'http', spec: { host: rx.host } } });
      assert.equal(errorCode(lit), 'E18303');
      assert.match(lit.body, /denied/);
      const mapped = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}`, body: { type: 'http', spec: { host: `http://[::ffff:127.0.0.1]:${port}` } } });
      assert.equal(errorCode(mapped), 'E18303');
      // "localhost" passes the create check (names are checked on every connect) but never connects.
      const name = fresh('ex');
      assert.equal((await push(s, repo, 'host=a')).statusCode, 200);
      assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: `localhost:${port}` } } })).statusCode, 200);
      await waitFor(async () => (await getExport(s, repo, name)).status.consecutiveFailures >= 2, 'failures');
      const st = (await getExport(s, repo, name)).status;
      assert.equal(st.state, 'error');
      assert.match(st.lastError, /denied by the outbound policy/);
      assert.equal(st.lag.points, 1);
      assert.equal(rx.requests.length, 0);
    } finally {
      await s.close();
      await rx.close();
    }
  });

  it('with an allow list connects only inside it, and refuses cloud metadata addresses by default', async () => {
    const s = await startServer({ exportAllow: '10.0.0.0/8' });
    const s2 = await startServer();
    try {
      const repo = await makeRepo(s);
      assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}`, body: { type: 'http', spec: { host: '127.0.0.1:9' } } })), 'E18303');
      assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}`, body: { type: 'http', spec: { host: '10.1.2.3:9' } } })).statusCode, 200);
      const repo2 = await makeRepo(s2);
      for (const host of ['169.254.169.254', '100.100.100.200', 'http://[fd00:ec2::254]', '168.63.129.16:80']) {
        assert.equal(errorCode(await s2.call({ method: 'POST', url: `/v2/repos/${repo2}/exports/${fresh('ex')}`, body: { type: 'http', spec: { host } } })), 'E18303', host);
      }
    } finally {
      await s.close();
      await s2.close();
    }
  });
});

describe('export batching and slow targets', () => {
  it('keeps each request within the batch byte cap and 20,000 points, in log order, losing nothing', async () => {
    const s = await startServer({ exportBatch: 50_000, exportBatchSize: '2KB' });
    const rx = await startReceiver();
    try {
      const repo = await makeRepo(s);
      const small = fresh('ex');
      const lines = Array.from({ length: 200 }, (_, i) => `host=h${String(i).padStart(4, '0')}\tregion=${'r'.repeat(30)}`);
      assert.equal((await push(s, repo, lines.join('\n'))).statusCode, 200);
      assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${small}`, body: { type: 'http', spec: { host: rx.host, uri: '/small' } } })).statusCode, 200);
      await waitFor(async () => (await getExport(s, repo, small)).status.delivered.total === 200, 'delivery');
      const reqs = rx.requests.filter((r) => r.url === '/small');
      assert.ok(reqs.length >= 5, `${reqs.length} requests`);
      for (const r of reqs) assert.ok(Buffer.byteLength(r.body) <= 2048, `${Buffer.byteLength(r.body)} bytes`);
      assert.deepEqual(reqs.flatMap((r) => r.body.split('\n')), lines);
    } finally {
      await s.close();
      await rx.close();
    }
    const s2 = await startServer({ exportBatch: 50_000, exportBatchSize: '64MB' });
    const rx2 = await startReceiver();
    try {
      const repo = await makeRepo(s2);
      const big = fresh('ex');
      assert.equal((await push(s2, repo, Array.from({ length: 45_000 }, (_, i) => `host=${i}`).join('\n'))).statusCode, 200);
      assert.equal((await s2.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${big}`, body: { type: 'http', spec: { host: rx2.host } } })).statusCode, 200);
      await waitFor(async () => (await getExport(s2, repo, big)).status.delivered.total === 45_000, 'delivery');
      const sizes = rx2.requests.map((r) => r.body.split('\n').length);
      assert.ok(Math.max(...sizes) <= 20_000, String(sizes));
      assert.equal(sizes.reduce((a, b) => a + b, 0), 45_000);
    } finally {
      await s2.close();
      await rx2.close();
    }
  });

  it('keeps pushes fast while the receiver hangs, and a PUT or DELETE does not wait for the hung request', async () => {
    const s = await startServer();
    const good = await startReceiver();
    try {
      const repo = await makeRepo(s);
      const name = fresh('ex');
      // A receiver that reads the request and never answers.
      const { createServer } = await import('node:http');
      const sink = createServer(() => {});
      await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
      const port = (sink.address() as { port: number }).port;
      assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: `127.0.0.1:${port}` } } })).statusCode, 200);
      const t0 = Date.now();
      for (let i = 0; i < 20; i++) assert.equal((await push(s, repo, `host=p${i}`)).statusCode, 200);
      assert.ok(Date.now() - t0 < 5000, `20 pushes took ${Date.now() - t0} ms`);
      await waitFor(async () => (await getExport(s, repo, name)).status.lag.points === 20, 'lag');
      const t1 = Date.now();
      assert.equal((await s.call({ method: 'PUT', url: `/v2/repos/${repo}/exports/${name}`, body: { spec: { host: good.host, uri: '/good' } } })).statusCode, 200);
      assert.ok(Date.now() - t1 < 2000, `PUT took ${Date.now() - t1} ms`);
      await waitFor(() => good.lines().length === 20, 'delivery to the new target');
      assert.deepEqual(good.lines(), Array.from({ length: 20 }, (_, i) => `host=p${i}`));
      sink.closeAllConnections();
      sink.close();
    } finally {
      await s.close();
      await good.close();
    }
  });
});

describe('export configuration and schema changes', () => {
  it('refuses bad outbound CIDRs and retry bounds at start, all problems together', async () => {
    const { loadConfig, ConfigError } = await import('../src/config.ts');
    assert.throws(() => loadConfig({}, { exportDeny: '10.0.0.0/33,nonsense', exportAllow: '::1/129', exportRetryMin: '5s', exportRetryMax: '1s' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const text = err.problems.join('\n');
      for (const bad of ['10.0.0.0/33', 'nonsense', '::1/129', 'exportRetryMax']) assert.match(text, new RegExp(bad.replace(/[.*/]/g, '\\$&')));
      return true;
    });
    const ok = loadConfig({}, { exportDeny: '127.0.0.1, fe80::/10' });
    assert.deepEqual(ok.exportOutbound.deny, ['127.0.0.1', 'fe80::/10']);
  });

  it('converts fields added to the repo schema with their types once the schema grows', async () => {
    const s = await startServer();
    const rx = await startReceiver();
    try {
      const repo = await makeRepo(s);
      const name = fresh('ex');
      assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, format: 'json' } } })).statusCode, 200);
      assert.equal((await push(s, repo, 'host=a\tlatency=1')).statusCode, 200);
      await waitFor(() => rx.lines().length === 1, 'the first point');
      const schema = [...(await import('./helpers.ts')).SIMPLE_SCHEMA, { key: 'bytes', valtype: 'long' }];
      assert.equal((await s.call({ method: 'PUT', url: `/v2/repos/${repo}`, body: { schema } })).statusCode, 200);
      assert.equal((await push(s, repo, 'host=b\tbytes=42')).statusCode, 200);
      await waitFor(() => rx.lines().length === 2, 'the second point');
      assert.deepEqual(rx.lines(), ['{"host":"a","latency":1}', '{"host":"b","bytes":42}']);
    } finally {
      await s.close();
      await rx.close();
    }
  });
});

describe('export restarts', () => {
  it('resumes after a clean restart from the committed offset with its counters, sending nothing twice', async () => {
    const { tmpDir } = await import('./helpers.ts');
    const dir = tmpDir();
    const rx = await startReceiver();
    const s1 = await startServer({}, dir);
    const repo = await makeRepo(s1);
    const name = fresh('ex');
    assert.equal((await push(s1, repo, 'host=a\nhost=b')).statusCode, 200);
    assert.equal((await s1.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', whence: 'oldest', spec: { host: rx.host } } })).statusCode, 200);
    await waitFor(() => rx.lines().length === 2, 'delivery');
    await s1.app.close(); // keeps the data dir
    const s2 = await startServer({}, dir);
    try {
      assert.equal((await push(s2, repo, 'host=c')).statusCode, 200);
      await waitFor(() => rx.lines().length === 3, 'delivery after the restart');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(rx.lines(), ['host=a', 'host=b', 'host=c']);
      const one = await getExport(s2, repo, name);
      assert.equal(one.whence, 'oldest');
      assert.equal(one.status.delivered.total, 3);
    } finally {
      await s2.close();
      await rx.close();
    }
  });
});
