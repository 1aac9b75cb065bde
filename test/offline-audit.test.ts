/** Offline defects found by an audit against issue 11, each checked end to end through the HTTP API. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh } from './helpers.ts';
import { jsonl, ManualClock, ok, putHdfs, putObject, startOffline, type OfflineServer } from './offline-helpers.ts';

const T0 = Date.parse('2026-05-06T07:08:09Z');

describe('offline audit: job exports, variables and sources', () => {
  let s: OfflineServer;
  before(async () => {
    s = await startOffline({}, { clock: new ManualClock(T0) });
  });
  after(() => s.close());
  const bucket = (): string => fresh('bkt').replaceAll('_', '-');

  async function runOnce(job: string, body?: object): Promise<{ status: string; message: string }> {
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`, body);
    await s.offline.scheduler.idle();
    return (await ok(s, 'GET', `/v2/jobs/${job}/history?runId=-1`)).history[0];
  }

  /** A manual (or `scheduler`) job over one json file in a fresh bucket. */
  async function jsonJob(rows: object[], sql: string, scheduler: object = { type: 'manual' }): Promise<string> {
    const b = bucket();
    putObject(s, b, 'in/a.json', jsonl(rows));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['in/'], fileType: 'json' } });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: sql }, scheduler });
    return job;
  }

  it('writes a manual or once job export to the key prefix itself as the file name, without a batch time appended (kodo and hdfs)', async () => {
    for (const type of ['manual', 'once']) {
      const job = await jsonJob([{ a: 1 }, { a: 2 }], 'SELECT a FROM t ORDER BY a', { type });
      const out = bucket();
      await ok(s, 'POST', `/v2/jobs/${job}/exports/k`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'reports/out.csv', format: 'csv' } });
      const dir = fresh('h');
      await ok(s, 'POST', `/v2/jobs/${job}/exports/h`, { type: 'hdfs', spec: { path: `hdfs://nn:9000/${dir}/result.json.gz`, format: 'json', compress: true } });
      const run = await runOnce(job);
      assert.equal(run.status, 'Successful', run.message);
      assert.deepEqual(readdirSync(path.join(s.config.bucketsDir, out, 'reports')), ['out.csv']);
      assert.equal(readFileSync(path.join(s.config.bucketsDir, out, 'reports', 'out.csv'), 'utf8'), 'a\n1\n2\n');
      assert.deepEqual(readdirSync(path.join(s.config.hdfsRoot, dir)), ['result.json.gz']);
      assert.equal(gunzipSync(readFileSync(path.join(s.config.hdfsRoot, dir, 'result.json.gz'))).toString(), '{"a":1}\n{"a":2}\n');
      assert.match(run.message, new RegExp(`k -> kodo://${out}/reports/out\\.csv: 1 file\\(s\\), 2 rows`));
      assert.match(run.message, new RegExp(`h -> hdfs:///${dir}/result\\.json\\.gz: 1 file\\(s\\), 2 rows`));
    }
  });
});
