/**
 * One account's hostile workloads must not stall another account: while
 * alice runs them, bob pushes 1,000 points and polls GET /health, and both
 * must keep answering within the targets of docs/performance.md.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { AK2, SK2, errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { retryDelay } from '../src/transforms/runner.ts';

/** Bob's traffic during `work`: latencies of 1,000-point pushes and of /health, and the peak RSS. */
async function probe(s: TestServer, work: () => Promise<unknown>, opts: { gzip?: boolean } = {}): Promise<{ push99: number; health99: number; pushes: number; rssMb: number; result: unknown }> {
  const repo = fresh('bob');
  const made = await s.call({ method: 'POST', url: `/v2/repos/${repo}`, ak: AK2, sk: SK2, body: { region: 'nb', schema: [{ key: 'host', valtype: 'string' }, { key: 'v', valtype: 'long' }] } });
  assert.equal(made.statusCode, 200, made.body);
  const text = Array.from({ length: 1000 }, (_, i) => `host=h${i % 7}\tv=${i}`).join('\n');
  // logkit gzips its pushes; their gunzip runs on Node's thread pool, like DuckDB's calls.
  const body = opts.gzip ? gzipSync(text) : text;
  const headers: Record<string, string> = { 'content-type': 'text/plain', ...(opts.gzip ? { 'content-encoding': 'gzip' } : {}) };
  const pushes: number[] = [];
  const health: number[] = [];
  let rss = process.memoryUsage().rss;
  let done = false;
  const traffic = (async () => {
    while (!done) {
      let t = performance.now();
      const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/data`, ak: AK2, sk: SK2, body, headers });
      pushes.push(performance.now() - t);
      assert.equal(res.statusCode, 200, res.body);
      t = performance.now();
      assert.equal((await s.call({ method: 'GET', url: '/health', anonymous: true })).statusCode, 200);
      health.push(performance.now() - t);
      rss = Math.max(rss, process.memoryUsage().rss);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  let result: unknown;
  try {
    result = await work();
  } finally {
    done = true;
    await traffic;
  }
  const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))] ?? 0;
  return { push99: p99(pushes), health99: p99(health), pushes: pushes.length, rssMb: Math.round(rss / 1048576), result };
}

describe('isolation between accounts', () => {
  let s: TestServer;
  /**
   * Push p99 bound: the 200 ms target, or 3x the p99 measured idle in this
   * run when the shared machine is slower than that (load averages of 15 on
   * 2 cores happen here). Before the fixes the delays were 3-10 s.
   */
  let pushBound = 200;
  /**
   * /health p99 bound: the 100 ms target, or 3x the idle push p99 when the
   * machine is that slow (under the full suite a single GC pause or a busy
   * core shows at p99 of ~50 samples). Before the fixes /health was held 3-5 s.
   */
  let healthBound = 100;
  before(async () => { s = await startServer({ transformSlots: 4, sqlThreads: 1, sqlTimeout: '4s', transformOutput: 2_000_000 }); });
  after(async () => { await s.close(); });

  const create = (repo: string, name: string, dest: string, code: string) =>
    s.call({ method: 'POST', url: `/v2/repos/${repo}/transforms/${name}/to/${dest}`, body: { mode: 'sql', code, interval: '10m' } });

  it('answers bob quickly with nothing else running (the baseline printed for docs/performance.md)', async () => {
    const m = await probe(s, () => new Promise((r) => setTimeout(r, 3_000)));
    console.log('baseline', JSON.stringify({ ...m, result: undefined }));
    pushBound = Math.max(200, 3 * m.push99);
    healthBound = Math.max(100, 3 * m.push99);
    assert.ok(m.pushes >= 5, `only ${m.pushes} pushes`);
  });

  it('refuses SQL that folds a huge constant at create, quickly, while another account\'s pushes keep answering', async () => {
    const rssBefore = process.memoryUsage().rss;
    const srcs = await Promise.all([0, 1, 2, 3].map(() => makeRepo(s)));
    const hostile = [
      (r: string) => `select repeat('x', 1000000000) as a from ${r}`,
      (r: string) => `select range(1 << 30) as a from ${r}`,
      (r: string) => `select len(list_transform(range(200000000), x -> x::varchar)) as a from ${r}`,
      (r: string) => `select string_agg(x::varchar, ',') as a from range(400000000) t(x), ${r}`,
    ];
    const m = await probe(s, () => Promise.all(srcs.map(async (src, i) => {
      const t0 = performance.now();
      const res = await create(src, 'boom', fresh('dest'), hostile[i]!(src));
      return { code: res.statusCode === 200 ? 'accepted' : errorCode(res), ms: performance.now() - t0, body: res.body };
    })));
    const results = m.result as Array<{ code: string; ms: number; body: string }>;
    console.log('create-time hostile SQL', JSON.stringify({ ...m, result: results.map((r) => [r.code, Math.round(r.ms)]) }));
    for (const r of results) {
      assert.equal(r.code, 'E18209', r.body);
      assert.ok(r.ms < 15_000, `refused after ${r.ms} ms`);
    }
    assert.match(results[0]!.body, /more memory than a check may use|took more than/);
    assert.ok(m.pushes >= 5, `only ${m.pushes} pushes`);
    assert.ok(m.push99 < pushBound, `push p99 ${m.push99} ms (bound ${pushBound})`);
    assert.ok(m.health99 < healthBound, `health p99 ${m.health99} ms (bound ${healthBound})`);
    assert.ok(m.rssMb * 1048576 - rssBefore < 512 * 1048576, `RSS grew from ${Math.round(rssBefore / 1048576)} to ${m.rssMb} MB`);
  });

  it('keeps another account\'s durable gzipped pushes fast while long SQL runs would fill Node\'s thread pool', async () => {
    const schema = [{ key: 'n', valtype: 'long' }];
    const srcs = await Promise.all([0, 1, 2, 3].map(() => makeRepo(s, fresh('slow'), schema)));
    for (const src of srcs) {
      // range(NULL) is empty, so the check's one-row trial is cheap; the pushed n makes the run long.
      const res = await create(src, 'slow', fresh('dest'), `select count(*) as c from ${src}, range(n)`);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((await push(s, src, 'n=40000000000')).statusCode, 200);
    }
    const m = await probe(s, () => Promise.all(srcs.map((src) => s.ctx.runner.runNow('alice', src, 'slow'))), { gzip: true });
    console.log('thread pool filled by SQL runs', JSON.stringify({ ...m, result: undefined }));
    assert.ok(m.pushes >= 5, `only ${m.pushes} pushes`);
    assert.ok(m.push99 < pushBound, `push p99 ${m.push99} ms (bound ${pushBound})`);
    assert.ok(m.health99 < healthBound, `health p99 ${m.health99} ms (bound ${healthBound})`);
    for (const src of srcs) {
      const t = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/slow` })).body) as { status: { lastError: string } };
      assert.match(t.status.lastError ?? '', /interrupted|exceeded/);
    }
  });

  const status = async (repo: string, name: string) =>
    (JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/transforms/${name}` })).body) as { status: Record<string, any> }).status;

  it('fails a SQL transform that returns 30M rows at the output limit, naming the setting, without holding /health', async () => {
    const src = await makeRepo(s, fresh('big'), [{ key: 'n', valtype: 'long' }]);
    const dest = fresh('dest');
    const res = await create(src, 'flood', dest, `select unnest(range(n)) as x from ${src}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await push(s, src, 'n=30000000')).statusCode, 200);
    const m = await probe(s, () => s.ctx.runner.runNow('alice', src, 'flood'));
    console.log('SQL transform returning 30M rows', JSON.stringify({ ...m, result: undefined }));
    assert.ok(m.health99 < healthBound, `health p99 ${m.health99} ms (bound ${healthBound})`);
    assert.ok(m.push99 < pushBound, `push p99 ${m.push99} ms (bound ${pushBound})`);
    const st = await status(src, 'flood');
    assert.equal(st.state, 'error');
    assert.match(st.lastError, /more than 2000000 points, over the limit of 2000000 points per run; raise transformOutput \(PIPELINE_TRANSFORM_OUTPUT\)/);
    assert.equal(st.failures, 1);
    assert.equal(JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dest}/data?count=1` })).body).records.length, 0, 'nothing written');
  });

  it('encodes a big output within the limit in steps, so /health keeps answering', async () => {
    const src = await makeRepo(s, fresh('wide'), [{ key: 'n', valtype: 'long' }]);
    const dest = fresh('dest');
    assert.equal((await create(src, 'many', dest, `select r.range as x, 'host-' || (r.range % 100) as h from ${src}, range(n) r`)).statusCode, 200);
    assert.equal((await push(s, src, 'n=1500000')).statusCode, 200);
    const m = await probe(s, () => s.ctx.runner.runNow('alice', src, 'many'));
    console.log('SQL transform returning 1.5M rows', JSON.stringify({ ...m, result: undefined }));
    assert.ok(m.health99 < healthBound, `health p99 ${m.health99} ms (bound ${healthBound})`);
    const st = await status(src, 'many');
    assert.equal(st.lastError, null);
    assert.deepEqual(st.total, { in: 1, out: 1_500_000 });
  });

  it('fails a plugin that returns 3M points inside its worker, before the server parses them', async () => {
    const code = 'export default (p) => { const a = new Array(3000000); for (let i = 0; i < a.length; i++) a[i] = { v: i }; return a; };';
    const up = await s.call({ method: 'POST', url: '/v2/plugins/com.x.Flood', body: code, headers: { 'content-type': 'application/javascript' } });
    assert.equal(up.statusCode, 200, up.body);
    const src = await makeRepo(s);
    const res = await s.call({
      method: 'POST', url: `/v2/repos/${src}/transforms/pflood/to/${fresh('dest')}`,
      body: { plugin: { name: 'com.x.Flood', output: [{ name: 'v', type: 'long' }] }, interval: '10m' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await push(s, src, 'host=a\tlatency=1')).statusCode, 200);
    const m = await probe(s, () => s.ctx.runner.runNow('alice', src, 'pflood'));
    console.log('plugin returning 3M points', JSON.stringify({ ...m, result: undefined }));
    assert.ok(m.health99 < healthBound, `health p99 ${m.health99} ms (bound ${healthBound})`);
    const st = await status(src, 'pflood');
    assert.equal(st.state, 'error');
    assert.match(st.lastError, /output limit: the plugin returned 3000000 points, over the limit of 2000000 points per run/);
  });

  it('backs off a failing transform exponentially, up to an hour', () => {
    assert.equal(retryDelay(5_000, 0), 5_000);
    assert.equal(retryDelay(5_000, 1), 5_000);
    assert.equal(retryDelay(5_000, 2), 10_000);
    assert.equal(retryDelay(5_000, 5), 80_000);
    assert.equal(retryDelay(5_000, 40), 3_600_000);
    assert.equal(retryDelay(600_000, 40), 3_600_000);
  });
});
