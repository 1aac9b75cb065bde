/**
 * Scheduler types with an injected clock (no sleeps): crontab (Quartz 6/7
 * and 5 fields), loop (interval and back to back), manual/once, depend;
 * stop, rerun, backfill and history queries.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { errorCode, fresh, tmpDir } from './helpers.ts';
import { jsonl, ManualClock, ok, putObject, readRows, startOffline, type OfflineServer } from './offline-helpers.ts';

const T0 = Date.parse('2026-03-04T05:06:07Z');
const H = 3_600_000;

describe('offline scheduler', () => {
  let s: OfflineServer;
  let clock: ManualClock;
  let ds: string;
  let b: string;
  // A fresh server, clock and datasource per test: schedules of one test never fire in another.
  beforeEach(async () => {
    clock = new ManualClock(T0);
    s = await startOffline({}, { clock });
    b = fresh('bkt').replaceAll('_', '-');
    for (let d = 1; d <= 5; d++) putObject(s, b, `logs/2026-03-0${d}/a.json`, jsonl(Array.from({ length: d }, (_, i) => ({ day: d, i }))));
    ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['logs/'], fileType: 'json' } });
  });
  afterEach(() => s.close());

  const job = (scheduler: object, extra: object = {}) => ({
    srcs: [{ name: ds, type: 'datasource', tableName: 'logs', fileFilter: '$(date)/' }],
    computation: { code: 'SELECT count(*) AS c, max(day) AS day FROM logs', type: 'SQL' },
    scheduler,
    ...extra,
  });
  const history = async (name: string, q = ''): Promise<Array<{ runId: number; batchTime: string; status: string; message: string }>> => {
    await s.offline.scheduler.idle();
    return (await ok(s, 'GET', `/v2/jobs/${name}/history?sortBy=runId&order=asc&size=100${q}`)).history;
  };
  const advanceTo = async (iso: string): Promise<void> => {
    clock.advanceTo(Date.parse(iso));
    await s.offline.scheduler.idle();
  };

  it('fires a Quartz 6-field crontab with ? at each matching time, with that time as batch time', async () => {
    const name = fresh('cron');
    await ok(s, 'POST', `/v2/jobs/${name}`, job({ type: 'crontab', spec: { crontab: '0 0 0/1 * * ?' } }));
    assert.equal(s.offline.scheduler.nextBatch('alice', name), Date.parse('2026-03-04T06:00:00Z'));
    assert.deepEqual(await history(name), []);
    await advanceTo('2026-03-04T08:30:00Z');
    const h = await history(name);
    assert.deepEqual(h.map((r) => r.batchTime), ['2026-03-04T06:00:00.000Z', '2026-03-04T07:00:00.000Z', '2026-03-04T08:00:00.000Z']);
    assert.ok(h.every((r) => r.status === 'Successful'), JSON.stringify(h));
    const view = await ok(s, 'GET', `/v2/jobs/${name}`);
    assert.equal(view.nextBatchTime, '2026-03-04T09:00:00.000Z');
    assert.equal(view.lastRun.runId, 3);
    assert.equal(view.lastRun.status, 'Successful');
    assert.match(h[0]!.message, /^1 rows/);
    await ok(s, 'POST', `/v2/jobs/${name}/actions/stop`);
    await advanceTo('2026-03-04T10:30:00Z');
    assert.equal((await history(name)).length, 4 - 1, 'a stopped job is not scheduled');
    assert.equal((await ok(s, 'GET', `/v2/jobs/${name}`)).status, 'stopped');
  });

  it('accepts 5-field and 7-field crontabs', async () => {
    const five = fresh('cron5');
    await ok(s, 'POST', `/v2/jobs/${five}`, job({ type: 'crontab', spec: { crontab: '*/30 * * * *' } }));
    const seven = fresh('cron7');
    await ok(s, 'POST', `/v2/jobs/${seven}`, job({ type: 'crontab', spec: { crontab: '0 15 12 ? * * 2026' } }));
    const now = clock.now();
    assert.equal(s.offline.scheduler.nextBatch('alice', five)! - now <= 30 * 60_000, true);
    assert.equal(new Date(s.offline.scheduler.nextBatch('alice', seven)!).toISOString().slice(11), '12:15:00.000Z');
    await ok(s, 'POST', `/v2/jobs/${five}/actions/stop`);
    await ok(s, 'POST', `/v2/jobs/${seven}/actions/stop`);
  });

  it('runs a loop job every interval and a loop 0 job back to back', async () => {
    const name = fresh('loop');
    await ok(s, 'POST', `/v2/jobs/${name}`, job({ type: 'loop', spec: { loop: '1h' } }));
    const start = clock.now();
    clock.advance(0);
    await s.offline.scheduler.idle();
    clock.advance(H);
    await s.offline.scheduler.idle();
    clock.advance(H / 2);
    const h = await history(name);
    assert.deepEqual(h.map((r) => Date.parse(r.batchTime) - start), [0, H]);
    await ok(s, 'POST', `/v2/jobs/${name}/actions/stop`);

    const b2b = fresh('b2b');
    await ok(s, 'POST', `/v2/jobs/${b2b}`, job({ type: 'loop', spec: { loop: '0' } }));
    for (let i = 0; i < 3; i++) {
      clock.advance(0);
      await s.offline.scheduler.idle();
    }
    assert.equal((await history(b2b)).length, 3);
    await ok(s, 'POST', `/v2/jobs/${b2b}/actions/stop`);
    clock.advance(0);
    assert.equal((await history(b2b)).length, 3);
  });

  it('runs manual and once jobs only on start, with the start time as batch time', async () => {
    for (const type of ['manual', 'once']) {
      const name = fresh(type);
      await ok(s, 'POST', `/v2/jobs/${name}`, job({ type }));
      clock.advance(24 * H);
      assert.deepEqual(await history(name), []);
      await ok(s, 'POST', `/v2/jobs/${name}/actions/start`);
      const h = await history(name);
      assert.equal(h.length, 1);
      assert.equal(Date.parse(h[0]!.batchTime), clock.now());
    }
  });

  it('runs a depend job after each successful upstream run, with its batch time, and not after a failed one', async () => {
    const up = fresh('up');
    await ok(s, 'POST', `/v2/jobs/${up}`, job({ type: 'crontab', spec: { crontab: '0 0 0 * * ?' } }, { params: [{ name: 'minday', default: '0' }] }));
    const down = fresh('down');
    const out = fresh('out').replaceAll('_', '-');
    await ok(s, 'POST', `/v2/jobs/${down}`, {
      srcs: [{ name: up, type: 'job', tableName: 'upstream' }],
      computation: { code: 'SELECT c * 10 AS c10, day FROM upstream WHERE day > $(minday)', type: 'SQL' },
      scheduler: { type: 'depend' },
    });
    await ok(s, 'POST', `/v2/jobs/${down}/exports/${fresh('e')}`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'd/$(date)', format: 'json' } });
    const bad = await s.call({ method: 'POST', url: `/v2/jobs/${fresh('down')}`, body: { srcs: [{ name: up, type: 'job', tableName: 'u2' }], computation: { code: 'SELECT 1', type: 'SQL' }, scheduler: { type: 'depend' }, container: { type: 'M16C4', count: 1 } } });
    assert.equal(errorCode(bad), 'E18614');
    clock.advanceTo(Date.parse('2026-03-05T23:00:00Z'));
    await s.offline.scheduler.idle();
    const hu = await history(up);
    const hd = await history(down);
    assert.deepEqual(hu.map((r) => r.status), ['Successful']);
    assert.deepEqual(hd.map((r) => [r.batchTime, r.status]), [[hu[0]!.batchTime, 'Successful']]);
    const rows = await readRows(`SELECT * FROM read_json('${path.join(s.config.bucketsDir, out, 'd', '2026-03-05', '*')}')`);
    assert.deepEqual(rows, [{ c10: '50', day: '5' }]);
    // 2026-03-06 has no files: the upstream fails and the depend job does not run.
    clock.advanceTo(Date.parse('2026-03-06T01:00:00Z'));
    await s.offline.scheduler.idle();
    assert.deepEqual((await history(up)).map((r) => r.status), ['Successful', 'Failed']);
    assert.equal((await history(down)).length, 1);
    await ok(s, 'POST', `/v2/jobs/${up}/actions/stop`);
  });

  it('reruns a failed batch with its own batch time once its files exist, and refuses reruns and stops in the wrong status', async () => {
    const name = fresh('rerun');
    clock.advanceTo(Date.parse('2026-03-10T01:00:00Z'));
    await ok(s, 'POST', `/v2/jobs/${name}`, job({ type: 'manual' }, { computation: { code: 'SELECT count(*) AS c FROM logs', type: 'SQL' } }));
    const day = new Date(clock.now()).toISOString().slice(0, 10);
    await ok(s, 'POST', `/v2/jobs/${name}/actions/start`);
    const [first] = await history(name);
    assert.equal(first!.status, 'Failed');
    assert.match(first!.message, new RegExp(`no files match kodo://${b}/logs/${day}/`));
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/batch/actions/stop', body: { jobName: name, runId: 1 } })), 'E18626');
    putObject(s, b, `logs/${day}/late.json`, jsonl([{ day: 0, i: 0 }, { day: 0, i: 1 }]));
    clock.advance(H);
    const res = await ok(s, 'POST', '/v2/batch/actions/rerun', { jobName: name, runId: '1' });
    assert.deepEqual(res, { preStatus: 'Failed', postStatus: 'Ready', rerunCount: 1 });
    const [again] = await history(name);
    assert.equal(again!.status, 'Successful', again!.message);
    assert.equal(again!.batchTime, first!.batchTime);
    assert.match(again!.message, /^1 rows/);
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/batch/actions/rerun', body: { jobName: name, runId: 7 } })), 'E18624');
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/batch/actions/rerun', body: { jobName: fresh('nojob'), runId: 1 } })), 'E18606');
  });

  it('stops a running batch with a DuckDB interrupt, discards its output, and allows a rerun afterwards', async () => {
    const name = fresh('slow');
    const out = fresh('out').replaceAll('_', '-');
    await ok(s, 'POST', `/v2/jobs/${name}`, {
      srcs: [{ name: ds, type: 'datasource', tableName: 'logs', fileFilter: '2026-03-01/' }],
      computation: { code: 'SELECT sum(hash(r.range + l.i)) AS h FROM logs l, range(100000000000) r', type: 'SQL' },
      scheduler: { type: 'manual' },
    });
    await ok(s, 'POST', `/v2/jobs/${name}/exports/${fresh('e')}`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'x/' } });
    await ok(s, 'POST', `/v2/jobs/${name}/actions/start`);
    while (!s.offline.scheduler.isRunning('alice', name) || (await ok(s, 'GET', `/v2/jobs/${name}/history?runId=-1`)).history[0].status !== 'Running') {
      await new Promise((r) => setImmediate(r));
    }
    const res = await ok(s, 'POST', '/v2/batch/actions/stop', { jobName: name, runId: 1 });
    assert.deepEqual(res, { preStatus: 'Running', postStatus: 'Canceled' });
    const [run] = await history(name);
    assert.equal(run!.status, 'Canceled');
    assert.match(run!.message, /cancelled/);
    const staging = path.join(s.config.bucketsDir, out, '.offline-staging');
    assert.deepEqual(existsSync(staging) ? readdirSync(staging) : [], []);
    assert.equal(existsSync(path.join(s.config.bucketsDir, out, 'x')), false);
    const rr = await ok(s, 'POST', '/v2/batch/actions/rerun', { jobName: name, runId: 1 });
    assert.equal(rr.preStatus, 'Canceled');
    await ok(s, 'POST', `/v2/jobs/${name}/actions/stop`);
    assert.equal((await history(name))[0]!.status, 'Canceled');
  });

  it('backfills every batch of a range oldest first, each reading its own day, with depend jobs following each', async () => {
    const name = fresh('daily');
    await ok(s, 'POST', `/v2/jobs/${name}`, job({ type: 'crontab', spec: { crontab: '0 0 0 * * ?' } }));
    const down = fresh('follow');
    await ok(s, 'POST', `/v2/jobs/${down}`, { srcs: [{ name, type: 'job', tableName: 'up' }], computation: { code: 'SELECT c FROM up', type: 'SQL' }, scheduler: { type: 'depend' } });
    await ok(s, 'POST', `/v2/jobs/${name}/actions/stop`);
    const res = await ok(s, 'POST', `/v2/jobs/${name}/actions/backfill`, { from: '2026-03-01T00:00:00Z', to: '2026-03-03T12:00:00Z' });
    assert.deepEqual(res.runs.map((r: { batchTime: string }) => r.batchTime), ['2026-03-01T00:00:00.000Z', '2026-03-02T00:00:00.000Z', '2026-03-03T00:00:00.000Z']);
    const h = await history(name);
    assert.deepEqual(h.map((r) => r.message.split(';')[0]), ['1 rows', '1 rows', '1 rows']);
    assert.deepEqual(h.map((r) => r.status), ['Successful', 'Successful', 'Successful']);
    assert.deepEqual((await history(down)).map((r) => r.batchTime), h.map((r) => r.batchTime));
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/jobs/${name}/actions/backfill`, body: { from: 'yesterday', to: '2026-03-03T12:00:00Z' } })), 'E18614');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/jobs/${down}/actions/backfill`, body: { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z' } })), 'E18614');

    // History queries: filters, order, paging, latest.
    const desc = (await ok(s, 'GET', `/v2/jobs/${name}/history?sortBy=-batchTime&size=2&page=1`));
    assert.equal(desc.total, 3);
    assert.deepEqual(desc.history.map((r: { runId: number }) => r.runId), [3, 2]);
    const page2 = (await ok(s, 'GET', `/v2/jobs/${name}/history?sortBy=batchTime&order=desc&size=2&page=2`));
    assert.deepEqual(page2.history.map((r: { runId: number }) => r.runId), [1]);
    assert.equal((await ok(s, 'GET', `/v2/jobs/${name}/history?status=Fail`)).total, 0);
    assert.equal((await ok(s, 'GET', `/v2/jobs/${name}/history?status=Success`)).total, 3);
    assert.deepEqual((await ok(s, 'GET', `/v2/jobs/${name}/history?runid=-1`)).history.map((r: { id: number }) => r.id), [3]);
    const one = (await ok(s, 'GET', `/v2/jobs/${name}/history?runId=2`)).history[0];
    assert.deepEqual(Object.keys(one).slice(0, 8), ['id', 'runId', 'batchTime', 'startTime', 'endTime', 'duration', 'status', 'message']);
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/jobs/${name}/history?status=weird` })), 'E18007');
  });

  it('fails a run that exceeds the offline timeout with a message saying so', async () => {
    const t = await startOffline({ offlineTimeout: '300ms' }, { clock: new ManualClock(T0) });
    try {
      const name = fresh('tmo');
      const b3 = fresh('bkt').replaceAll('_', '-');
      putObject(t, b3, 'a.json', jsonl([{ a: 1 }]));
      await ok(t, 'POST', `/v2/datasources/d`, { type: 'kodo', spec: { bucket: b3, fileType: 'json' } });
      await ok(t, 'POST', `/v2/jobs/${name}`, { srcs: [{ name: 'd', type: 'datasource', tableName: 'x' }], computation: { code: 'SELECT sum(hash(range + a)) AS h FROM x, range(100000000000)', type: 'SQL' }, scheduler: { type: 'manual' } });
      await ok(t, 'POST', `/v2/jobs/${name}/actions/start`);
      await t.offline.scheduler.idle();
      const [run] = (await ok(t, 'GET', `/v2/jobs/${name}/history`)).history;
      assert.equal(run.status, 'Failed');
      assert.match(run.message, /exceeded the offline timeout/);
    } finally {
      await t.close();
    }
  });
});

describe('offline schedules across restarts', () => {
  it('resumes loop and crontab schedules from the stored jobs and keeps stopped jobs stopped', async () => {
    const dir = tmpDir();
    const c1 = new ManualClock(T0);
    let s = await startOffline({}, { clock: c1, dir });
    try {
      const b = fresh('bkt').replaceAll('_', '-');
      putObject(s, b, 'a.json', jsonl([{ a: 1 }]));
      await ok(s, 'POST', '/v2/datasources/d', { type: 'kodo', spec: { bucket: b, fileType: 'json' } });
      const body = (scheduler: object) => ({ srcs: [{ name: 'd', type: 'datasource', tableName: 't' }], computation: { code: 'SELECT a FROM t' }, scheduler });
      await ok(s, 'POST', '/v2/jobs/hourly_loop', body({ type: 'loop', spec: { loop: '1h' } }));
      await ok(s, 'POST', '/v2/jobs/cron', body({ type: 'crontab', spec: { crontab: '0 0 * * * ?' } }));
      await ok(s, 'POST', '/v2/jobs/paused', body({ type: 'crontab', spec: { crontab: '0 * * * * ?' } }));
      await ok(s, 'POST', '/v2/jobs/paused/actions/stop');
      c1.advance(0);
      await s.offline.scheduler.idle();
      await s.close();

      const c2 = new ManualClock(T0 + 30 * 60_000);
      s = await startOffline({}, { clock: c2, dir });
      assert.equal(s.offline.scheduler.nextBatch('alice', 'hourly_loop'), T0 + H, 'last batch + interval');
      assert.equal(s.offline.scheduler.nextBatch('alice', 'cron'), Date.parse('2026-03-04T06:00:00Z'));
      assert.equal(s.offline.scheduler.nextBatch('alice', 'paused'), undefined);
      c2.advanceTo(T0 + H);
      await s.offline.scheduler.idle();
      const h = (await ok(s, 'GET', '/v2/jobs/hourly_loop/history?sortBy=runId&order=asc')).history;
      assert.deepEqual(h.map((r: { batchTime: string; status: string }) => [Date.parse(r.batchTime) - T0, r.status]), [[0, 'Successful'], [H, 'Successful']]);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
