/**
 * Crash recovery of offline runs end to end: a real server process is
 * killed with SIGKILL while a batch runs; after a restart that batch is
 * Failed with a message saying why, its staged output is not published, and
 * a crontab job scheduled before the crash keeps running on schedule.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { waitFor } from './exports-helpers.ts';
import { tmpDir } from './helpers.ts';
import { jsonl } from './offline-helpers.ts';
import { spawnServer } from './spawn.ts';

describe('offline crash recovery', () => {
  const dir = tmpDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('marks a batch cut off by kill -9 Failed after restart, publishes none of it, and keeps the schedules', async () => {
    const file = path.join(dir, 'buckets', 'crash-bkt', 'in', 'a.json');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, jsonl([{ a: 1 }, { a: 2 }]));
    const ENV = { PIPELINE_SQL_THREADS: '1' };
    let s = spawnServer(dir, ENV);
    await s.base;
    try {
      await s.json('POST', '/v2/datasources/src', { type: 'kodo', spec: { bucket: 'crash-bkt', keyPrefixes: ['in/'], fileType: 'json' } });
      await s.json('POST', '/v2/jobs/slow', { srcs: [{ name: 'src', type: 'datasource', tableName: 't' }], computation: { code: 'SELECT sum(hash(range + a)) AS h FROM t, range(100000000000)', type: 'SQL' }, scheduler: { type: 'manual' } });
      await s.json('POST', '/v2/jobs/slow/exports/out', { type: 'kodo', spec: { bucket: 'crash-out', keyPrefix: 'slow/' } });
      // Every 2 seconds (Quartz, with seconds).
      await s.json('POST', '/v2/jobs/tick', { srcs: [{ name: 'src', type: 'datasource', tableName: 't' }], computation: { code: 'SELECT count(*) AS c FROM t', type: 'SQL' }, scheduler: { type: 'crontab', spec: { crontab: '0/2 * * * * ?' } } });
      await s.json('POST', '/v2/jobs/slow/actions/start');
      await waitFor(async () => (await s.json('GET', '/v2/jobs/slow/history?runId=-1')).history[0]?.status === 'Running', 'the slow batch to run', 30_000);
      const staging = path.join(dir, 'buckets', 'crash-out', '.offline-staging');
      await waitFor(async () => existsSync(staging) && readdirSync(staging).length === 1, 'the slow batch to stage its export', 30_000);
      await new Promise((r) => setTimeout(r, 200));
      await s.stop('SIGKILL');

      const restartedAt = Date.now();
      s = spawnServer(dir, ENV);
      await s.base;
      const slow = (await s.json('GET', '/v2/jobs/slow/history')).history;
      assert.equal(slow.length, 1);
      assert.equal(slow[0].status, 'Failed');
      assert.match(slow[0].message, /server stopped during this run/);
      assert.equal(existsSync(path.join(dir, 'buckets', 'crash-out', 'slow')), false, 'nothing of the cut-off run is published');
      assert.equal(existsSync(staging), false, 'its staged files are swept at start');
      await waitFor(async () => {
        const h = (await s.json('GET', '/v2/jobs/tick/history?sortBy=-batchTime&size=1')).history;
        return h.length > 0 && Date.parse(h[0].batchTime) >= restartedAt && h[0].status === 'Successful';
      }, 'a scheduled tick after the restart', 30_000);
      // The killed run can be rerun once the server is back.
      const rr = await s.json('POST', '/v2/batch/actions/rerun', { jobName: 'slow', runId: 1 });
      assert.equal(rr.preStatus, 'Failed');
      await s.json('POST', '/v2/jobs/slow/actions/stop');
    } finally {
      await s.stop('SIGTERM');
    }
  });
});
