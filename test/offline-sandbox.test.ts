/** Job SQL and magic variables cannot reach files outside what the run matched. */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh } from './helpers.ts';
import { jsonl, ManualClock, ok, putObject, startOffline, type OfflineServer } from './offline-helpers.ts';

describe('offline sandbox', () => {
  let s: OfflineServer;
  let ds: string;
  let b: string;
  let secret: string;
  before(async () => {
    s = await startOffline({}, { clock: new ManualClock(Date.parse('2026-01-01T00:00:00Z')) });
    b = fresh('bkt').replaceAll('_', '-');
    putObject(s, b, 'logs/a.json', jsonl([{ a: 1 }]));
    secret = putObject(s, 'other-bucket', 'secret.json', jsonl([{ secret: 'x' }]));
    writeFileSync(path.join(s.dir, 'outside.json'), jsonl([{ o: 1 }]));
    ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['logs/'], fileType: 'json' } });
  });
  after(() => s.close());

  const job = (sql: string, extra: object = {}) => ({ srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: sql }, scheduler: { type: 'manual' }, ...extra });

  it('refuses SQL that reads files by itself, whether system files or another bucket', async () => {
    for (const sql of ["SELECT * FROM read_csv('/etc/passwd')", `SELECT * FROM read_json('${secret}')`, "SELECT * FROM read_text('/proc/self/environ')", "SELECT * FROM glob('/*')"]) {
      const res = await s.call({ method: 'POST', url: `/v2/jobs/${fresh('job')}`, body: job(sql) });
      assert.equal(errorCode(res), 'E18618', sql);
      assert.match(res.body, /disabled by configuration|Permission/, sql);
    }
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/jobs/${fresh('job')}`, body: job("COPY t TO '/tmp/x.csv'") })), 'E18618');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/jobs/${fresh('job')}`, body: job("INSTALL httpfs") })), 'E18618');
  });

  it('fails a run whose runtime params would lead a file filter or key prefix out of its root', async () => {
    const name = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${name}`, { ...job('SELECT a FROM t'), srcs: [{ name: ds, type: 'datasource', tableName: 't', fileFilter: '$(sub)' }], params: [{ name: 'sub', default: 'a' }] });
    await ok(s, 'POST', `/v2/jobs/${name}/actions/start`, { params: [{ name: 'sub', value: '../../other-bucket/' }] });
    await s.offline.scheduler.idle();
    const [run] = (await ok(s, 'GET', `/v2/jobs/${name}/history`)).history;
    assert.equal(run.status, 'Failed');
    assert.match(run.message, /E18638/);

    const exp = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${exp}`, { ...job('SELECT a FROM t'), params: [{ name: 'dir', default: 'ok' }] });
    await ok(s, 'POST', `/v2/jobs/${exp}/exports/e`, { type: 'kodo', spec: { bucket: b, keyPrefix: 'out/$(dir)/', format: 'json' } });
    await ok(s, 'POST', `/v2/jobs/${exp}/actions/start`, { params: [{ name: 'dir', value: '../../../escaped' }] });
    await s.offline.scheduler.idle();
    const [r2] = (await ok(s, 'GET', `/v2/jobs/${exp}/history`)).history;
    assert.equal(r2.status, 'Failed');
    assert.match(r2.message, /must stay below its root/);
    assert.equal(existsSync(path.join(s.config.bucketsDir, '..', 'escaped')), false);
  });
});
