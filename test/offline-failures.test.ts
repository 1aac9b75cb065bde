/** Run failures a user must be able to read from the history: engine errors, out of memory, missing upstream output. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rmSync } from 'node:fs';
import { AK2, fresh, SK2, tmpDir } from './helpers.ts';
import { jsonl, ManualClock, ok, putObject, startOffline, type OfflineServer } from './offline-helpers.ts';

describe('offline run failure messages', () => {
  let s: OfflineServer;
  let ds: string;
  before(async () => {
    s = await startOffline({ sqlMemory: '64MB' }, { clock: new ManualClock(Date.parse('2026-01-01T00:00:00Z')) });
    const b = fresh('bkt').replaceAll('_', '-');
    putObject(s, b, 'a.json', jsonl([{ host: 'web-1', n: 1 }, { host: 'x', n: 2 }]));
    ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, fileType: 'json' } });
  });
  after(() => s.close());

  async function run(sql: string, srcs?: object[]): Promise<{ status: string; message: string }> {
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: srcs ?? [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: sql }, scheduler: { type: 'manual' } });
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    await s.offline.scheduler.idle();
    return (await ok(s, 'GET', `/v2/jobs/${job}/history?runId=-1`)).history[0];
  }

  it('reports a conversion error with DuckDB\'s reason', async () => {
    const r = await run('SELECT CAST(host AS INTEGER) AS h FROM t');
    assert.equal(r.status, 'Failed');
    assert.match(r.message, /Conversion Error: Could not convert string 'web-1' to INT32/);
  });

  it('reports out of memory with the limit', async () => {
    const r = await run('SELECT list(range) AS l, count(*) AS c FROM range(80000000), t GROUP BY t.n');
    assert.equal(r.status, 'Failed');
    assert.match(r.message, /^out of memory \(limit 64MB\)/);
  });

  it('names the SQL error with its position when a run finds the source changed since the job was checked', async () => {
    // Checked at create against the upstream's schema; the upstream is then replaced and no longer has `n`.
    const up = fresh('up');
    const upJob = (code: string) => ({ srcs: [{ name: ds, type: 'datasource', tableName: 'u' }], computation: { code }, scheduler: { type: 'manual' } });
    await ok(s, 'POST', `/v2/jobs/${up}`, upJob('SELECT n FROM u'));
    const down = fresh('down');
    await ok(s, 'POST', `/v2/jobs/${down}`, { srcs: [{ name: up, type: 'job', tableName: 'up' }], computation: { code: 'SELECT sum(n) AS total FROM up;' }, scheduler: { type: 'manual' } });
    await ok(s, 'PUT', `/v2/jobs/${up}`, upJob('SELECT n AS m FROM u'));
    await ok(s, 'POST', `/v2/jobs/${up}/actions/start`);
    await s.offline.scheduler.idle();
    await ok(s, 'POST', `/v2/jobs/${down}/actions/start`);
    await s.offline.scheduler.idle();
    const r = (await ok(s, 'GET', `/v2/jobs/${down}/history?runId=-1`)).history[0];
    assert.equal(r.status, 'Failed');
    assert.match(r.message, /^SQL error: Binder Error: Referenced column "n" not found/);
    assert.match(r.message, /LINE 1: SELECT sum\(n\) AS total FROM up/, 'the position is in the job\'s own SQL');
  });

  it('runs SQL with a trailing semicolon or comment, a leading WITH and VALUES, with and without exports', async () => {
    const out = fresh('bkt').replaceAll('_', '-');
    const cases: Array<[string, number]> = [
      ['SELECT n FROM t ORDER BY n;  \n', 2],
      ['SELECT n FROM t -- the rows', 2],
      ['WITH x AS (SELECT n FROM t) SELECT n, n * 2 AS d FROM x;', 2],
      ['FROM t SELECT n WHERE n > 1', 1],
      ['VALUES (1), (2), (3)', 3],
    ];
    for (const [i, [sql, rows]] of cases.entries()) {
      for (const exported of [false, true]) {
        const job = fresh('job');
        await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: sql }, scheduler: { type: 'manual' } });
        if (exported) await ok(s, 'POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket: out, keyPrefix: `c${i}/`, format: 'json' } });
        await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
        await s.offline.scheduler.idle();
        const r = (await ok(s, 'GET', `/v2/jobs/${job}/history?runId=-1`)).history[0];
        assert.equal(r.status, 'Successful', `${JSON.stringify(sql)} exported=${exported}: ${r.message}`);
        assert.match(r.message, new RegExp(`^${rows} rows`), JSON.stringify(sql));
      }
    }
  });

  it('reports an upstream job without output yet', async () => {
    const up = fresh('up');
    await ok(s, 'POST', `/v2/jobs/${up}`, { srcs: [{ name: ds, type: 'datasource', tableName: 'u' }], computation: { code: 'SELECT n FROM u' }, scheduler: { type: 'manual' } });
    const r = await run('SELECT sum(n) AS s FROM up', [{ name: up, type: 'job', tableName: 'up' }]);
    assert.equal(r.status, 'Failed');
    assert.equal(r.message, `source job ${up} has no successful output yet`);
  });
});

describe('offline run concurrency', () => {
  it('runs at most offlineSlots batches at once and a job\'s own batches one at a time', async () => {
    const s = await startOffline({ offlineSlots: 1 }, { clock: new ManualClock(Date.parse('2026-01-01T00:00:00Z')) });
    try {
      const b = fresh('bkt').replaceAll('_', '-');
      putObject(s, b, 'a.json', jsonl([{ n: 1 }]));
      await ok(s, 'POST', '/v2/datasources/d', { type: 'kodo', spec: { bucket: b, fileType: 'json' } });
      const slow = { srcs: [{ name: 'd', type: 'datasource', tableName: 't' }], computation: { code: 'SELECT sum(hash(range + n)) AS h FROM t, range(100000000000)' }, scheduler: { type: 'manual' } };
      await ok(s, 'POST', '/v2/jobs/one', slow);
      await ok(s, 'POST', '/v2/jobs/two', slow);
      await ok(s, 'POST', '/v2/jobs/one/actions/start');
      await ok(s, 'POST', '/v2/jobs/one/actions/start');
      await ok(s, 'POST', '/v2/jobs/two/actions/start');
      const statuses = async (job: string): Promise<string[]> => (await ok(s, 'GET', `/v2/jobs/${job}/history?sortBy=runId&order=asc`)).history.map((r: { status: string }) => r.status);
      while ((await statuses('one'))[0] !== 'Running') await new Promise((r) => setImmediate(r));
      assert.deepEqual(await statuses('one'), ['Running', 'Ready']);
      assert.deepEqual(await statuses('two'), ['Ready'], 'the only slot is taken');
      await ok(s, 'POST', '/v2/batch/actions/stop', { jobName: 'one', runId: 1 });
      while ((await statuses('one'))[1] !== 'Running' && (await statuses('two'))[0] !== 'Running') await new Promise((r) => setImmediate(r));
      const running = [...(await statuses('one')), ...(await statuses('two'))].filter((x) => x === 'Running');
      assert.equal(running.length, 1, 'still one at a time');
      await ok(s, 'POST', '/v2/jobs/one/actions/stop');
      await ok(s, 'POST', '/v2/jobs/two/actions/stop');
      await s.offline.scheduler.idle();
      assert.deepEqual(await statuses('one'), ['Canceled', 'Canceled']);
      assert.deepEqual(await statuses('two'), ['Canceled']);
    } finally {
      await s.close();
    }
  });

  it('on shutdown fails the running batch as interrupted, starts none of the queued ones, and fails those at the next start', async () => {
    const dir = tmpDir();
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const s = await startOffline({ offlineSlots: 1 }, { clock, dir });
    const b = fresh('bkt').replaceAll('_', '-');
    putObject(s, b, 'a.json', jsonl([{ n: 1 }]));
    await ok(s, 'POST', '/v2/datasources/d', { type: 'kodo', spec: { bucket: b, fileType: 'json' } });
    const slow = { srcs: [{ name: 'd', type: 'datasource', tableName: 't' }], computation: { code: 'SELECT sum(hash(range + n)) AS h FROM t, range(100000000000)' }, scheduler: { type: 'manual' } };
    await ok(s, 'POST', '/v2/jobs/slow', slow);
    await ok(s, 'POST', '/v2/jobs/queued', { ...slow, computation: { code: 'SELECT n FROM t' } });
    await ok(s, 'POST', '/v2/jobs/slow/actions/start');
    await ok(s, 'POST', '/v2/jobs/queued/actions/start');
    const status = async (srv: OfflineServer, job: string): Promise<{ status: string; message: string }> => (await ok(srv, 'GET', `/v2/jobs/${job}/history?runId=-1`)).history[0];
    while ((await status(s, 'slow')).status !== 'Running') await new Promise((r) => setImmediate(r));
    await s.close();
    const s2 = await startOffline({ offlineSlots: 1 }, { clock, dir });
    try {
      const slowRun = await status(s2, 'slow');
      assert.equal(slowRun.status, 'Failed');
      assert.match(slowRun.message, /shut down|stopped during this run/);
      const queuedRun = await status(s2, 'queued');
      assert.equal(queuedRun.status, 'Failed', 'the queued batch never ran');
      assert.match(queuedRun.message, /before this batch started/);
    } finally {
      await s2.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives a freed slot to the account served longest ago, not to the next of another account\'s backlog', async () => {
    const s = await startOffline({ offlineSlots: 1 }, { clock: new ManualClock(Date.parse('2026-01-01T00:00:00Z')) });
    try {
      const as = (ak: string, sk: string) => async (method: string, url: string, body?: unknown): Promise<any> => {
        const res = await s.call({ method, url, body, ak, sk });
        if (res.statusCode !== 200) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
        return res.body ? JSON.parse(res.body) : undefined;
      };
      const alice = (m: string, u: string, b?: unknown) => ok(s, m, u, b);
      const bob = as(AK2, SK2);
      const slow = { srcs: [{ name: 'd', type: 'datasource', tableName: 't' }], computation: { code: 'SELECT sum(hash(range + n)) AS h FROM t, range(100000000000)' }, scheduler: { type: 'manual' } };
      for (const [who, call] of [['alice', alice], ['bob', bob]] as const) {
        const b = fresh(`bkt-${who}`).replaceAll('_', '-');
        putObject(s, b, 'a.json', jsonl([{ n: 1 }]));
        await call('POST', '/v2/datasources/d', { type: 'kodo', spec: { bucket: b, fileType: 'json' } });
      }
      const status = async (call: typeof bob, job: string): Promise<string> => (await call('GET', `/v2/jobs/${job}/history?runId=-1`)).history[0]?.status ?? 'none';
      // Bounded: a wrong pick leaves the wrong slow run holding the slot, which would otherwise wait forever.
      const until = async (call: typeof bob, job: string, want: string): Promise<void> => {
        const deadline = Date.now() + 20_000;
        while ((await status(call, job)) !== want) {
          if (Date.now() > deadline) {
            const all = { a2: await status(alice, 'a2'), a3: await status(alice, 'a3'), b1: await status(bob, 'b1') };
            assert.fail(`${job} never became ${want}: ${JSON.stringify(all)}`);
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      // Alice: one run holding the only slot and three more queued; then Bob's run queues behind them.
      for (const job of ['a1', 'a2', 'a3', 'a4']) await alice('POST', `/v2/jobs/${job}`, slow);
      await bob('POST', '/v2/jobs/b1', slow);
      await alice('POST', '/v2/jobs/a1/actions/start');
      await until(alice, 'a1', 'Running');
      for (const job of ['a2', 'a3', 'a4']) await alice('POST', `/v2/jobs/${job}/actions/start`);
      await bob('POST', '/v2/jobs/b1/actions/start');
      await alice('POST', '/v2/batch/actions/stop', { jobName: 'a1', runId: 1 });
      await until(bob, 'b1', 'Running');
      assert.deepEqual([await status(alice, 'a2'), await status(alice, 'a3'), await status(alice, 'a4')], ['Ready', 'Ready', 'Ready'], 'Bob went before the rest of Alice\'s backlog');
      await bob('POST', '/v2/batch/actions/stop', { jobName: 'b1', runId: 1 });
      await until(alice, 'a2', 'Running');
      assert.deepEqual([await status(alice, 'a3'), await status(alice, 'a4')], ['Ready', 'Ready'], 'Alice\'s own runs keep their order');
      for (const job of ['a2', 'a3', 'a4']) await alice('POST', `/v2/jobs/${job}/actions/stop`);
      await s.offline.scheduler.idle();
    } finally {
      await s.close();
    }
  });
});

