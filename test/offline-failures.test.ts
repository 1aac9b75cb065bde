/** Run failures a user must be able to read from the history: engine errors, out of memory, missing upstream output. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fresh } from './helpers.ts';
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

  it('reports an upstream job without output yet', async () => {
    const up = fresh('up');
    await ok(s, 'POST', `/v2/jobs/${up}`, { srcs: [{ name: ds, type: 'datasource', tableName: 'u' }], computation: { code: 'SELECT n FROM u' }, scheduler: { type: 'manual' } });
    const r = await run('SELECT sum(n) AS s FROM up', [{ name: up, type: 'job', tableName: 'up' }]);
    assert.equal(r.status, 'Failed');
    assert.equal(r.message, `source job ${up} has no successful output yet`);
  });
});
