import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh } from './helpers.ts';
import { jsonl, ManualClock, ok, putObject, readRows, startOffline, type OfflineServer } from './offline-helpers.ts';

const T0 = Date.parse('2026-03-04T05:06:07Z');

describe('offline jobs, job exports and runs', () => {
  let s: OfflineServer;
  let clock: ManualClock;
  before(async () => {
    clock = new ManualClock(T0);
    s = await startOffline({}, { clock });
  });
  after(() => s.close());

  const bucket = (): string => fresh('bkt').replaceAll('_', '-');

  /** A bucket with two days of json logs and a datasource over them. */
  async function setup(): Promise<{ b: string; ds: string }> {
    const b = bucket();
    putObject(s, b, 'logs/2026-03-03/a.json', jsonl([{ host: 'a', n: 1 }, { host: 'b', n: 2 }]));
    putObject(s, b, 'logs/2026-03-04/a.json', jsonl([{ host: 'a', n: 10 }, { host: 'a', n: 20 }, { host: 'c', n: 5 }]));
    putObject(s, b, 'logs/2026-03-04/b.json.gz', jsonl([{ host: 'c', n: 1 }]), true);
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { region: 'nb', type: 'kodo', spec: { bucket: b, keyPrefixes: ['logs/'], fileType: 'json' } });
    return { b, ds };
  }

  const manualJob = (ds: string, sql: string, extra: object = {}) => ({
    srcs: [{ name: ds, type: 'DataSource', tableName: 'logs', fileFilter: '$(year)-$(mon)-$(day)/' }],
    computation: { code: sql, type: 'SQL' },
    container: { type: 'M16C4', count: 1 },
    scheduler: { type: 'manual' },
    ...extra,
  });

  async function lastRun(job: string): Promise<{ status: string; message: string; runId: number; batchTime: string }> {
    await s.offline.scheduler.idle();
    const h = await ok(s, 'GET', `/v2/jobs/${job}/history?runId=-1`);
    return h.history[0];
  }

  it('runs SQL over the files a magic-variable file filter matches at the batch time and reports it in the history', async () => {
    const { ds } = await setup();
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, manualJob(ds, 'SELECT host, sum(n) AS total, count(*) AS c FROM logs GROUP BY host ORDER BY host'));
    const got = await ok(s, 'GET', `/v2/jobs/${job}`);
    assert.equal(got.scheduler.type, 'manual');
    assert.deepEqual(got.schema, [{ key: 'host', valtype: 'string' }, { key: 'total', valtype: 'long' }, { key: 'c', valtype: 'long' }]);
    assert.deepEqual(await ok(s, 'GET', `/v2/jobs/${job}/schema`), { schema: got.schema });
    assert.deepEqual(await ok(s, 'GET', `/v2/jobs/${job}/exists`), { exist: true });
    const list = await ok(s, 'GET', `/v2/jobs?srcDatasource=${ds}`);
    assert.deepEqual(list.jobs.map((j: { name: string }) => j.name), [job]);
    assert.deepEqual((await ok(s, 'GET', `/v2/jobs?parentRepo=nothing`)).jobs, []);

    const exp = fresh('exp');
    const b2 = bucket();
    await ok(s, 'POST', `/v2/jobs/${job}/exports/${exp}`, { type: 'kodo', spec: { bucket: b2, keyPrefix: 'out/$(date)/', format: 'json', fileCount: 1, fields: { h: '#host', total: '#total' } } });
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    const run = await lastRun(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.equal(run.batchTime, new Date(T0).toISOString());
    assert.match(run.message, /2 rows/);
    assert.match(run.message, new RegExp(`kodo://${b2}/out/2026-03-04: 1 file`));
    const dir = path.join(s.config.bucketsDir, b2, 'out', '2026-03-04');
    const rows = await readRows(`SELECT * FROM read_json('${dir}/*.json') ORDER BY h`);
    assert.deepEqual(rows, [{ h: 'a', total: '30' }, { h: 'c', total: '6' }]);
    assert.deepEqual(readdirSync(path.join(s.config.bucketsDir, b2)).sort(), ['.offline-staging', 'out']);
    assert.deepEqual(readdirSync(path.join(s.config.bucketsDir, b2, '.offline-staging')), [], 'nothing left in staging');
  });

  it('writes hive-partitioned parquet with fileCount files per partition and replaces it atomically on overwrite', async () => {
    const { ds } = await setup();
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, manualJob(ds, 'SELECT host, n FROM logs'));
    const b2 = bucket();
    await ok(s, 'POST', `/v2/jobs/${job}/exports/${fresh('exp')}`, { type: 'kodo', spec: { bucket: b2, keyPrefix: 'p/', partitionBy: ['host'], fileCount: 2, saveMode: 'overwrite' } });
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    assert.equal((await lastRun(job)).status, 'Successful');
    // No magic variable in the key prefix: the batch time is appended (reference).
    const root = path.join(s.config.bucketsDir, b2, 'p', '2026-03-04-05-06-07');
    assert.deepEqual(readdirSync(root).sort(), ['host=a', 'host=c']);
    assert.deepEqual(readdirSync(path.join(root, 'host=a')).sort(), ['part-00000.parquet', 'part-00001.parquet']);
    const rows = await readRows(`SELECT host, sum(n)::INT AS s, count(*)::INT AS c FROM read_parquet('${root}/*/*.parquet', hive_partitioning=true) GROUP BY host ORDER BY host`);
    assert.deepEqual(rows, [{ host: 'a', s: 30, c: 2 }, { host: 'c', s: 6, c: 2 }]);
    // A second run replaces (not adds to) the output.
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    assert.equal((await lastRun(job)).status, 'Successful');
    const again = await readRows(`SELECT count(*)::INT AS c FROM read_parquet('${root}/*/*.parquet')`);
    assert.deepEqual(again, [{ c: 4 }]);
    assert.deepEqual(readdirSync(path.join(s.config.bucketsDir, b2)).filter((n) => n !== '.offline-staging'), ['p']);
    assert.deepEqual(readdirSync(path.join(s.config.bucketsDir, b2, 'p')), ['2026-03-04-05-06-07']);
    assert.deepEqual(readdirSync(path.join(s.config.bucketsDir, b2, '.offline-staging')), []);
  });

  it('substitutes params (default, then start body) and user variables into the SQL and refuses undefined ones at create', async () => {
    const { ds } = await setup();
    await ok(s, 'POST', `/v2/variables/${fresh('v').toLowerCase()}`, { type: 'string', value: 'x' });
    const vname = fresh('yesterday');
    await ok(s, 'POST', `/v2/variables/${vname}`, { type: 'time', value: '$(now) - 1d', format: 'yyyy-MM-dd' });
    const job = fresh('job');
    const body = {
      ...manualJob(ds, "SELECT count(*) AS c, '$(who)' AS who FROM logs WHERE host <> '$(skip)'"),
      params: [{ name: 'skip', default: 'c' }, { name: 'who', default: 'nobody' }],
    };
    body.srcs[0]!.fileFilter = `$(${vname})/`;
    await ok(s, 'POST', `/v2/jobs/${job}`, body);
    await ok(s, 'POST', `/v2/jobs/${job}/exports/${fresh('e')}`, { type: 'kodo', spec: { bucket: bucket(), keyPrefix: 'x/', format: 'csv' } });
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`, { params: [{ name: 'who', value: 'me' }] });
    const run = await lastRun(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.match(run.message, /^1 rows/);
    const bad = await s.call({ method: 'POST', url: `/v2/jobs/${fresh('job')}`, body: manualJob(ds, 'SELECT * FROM logs WHERE host = $(nope)') });
    assert.equal(errorCode(bad), 'E18657');
    assert.match(bad.body, /\$\(nope\)/);
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/jobs/${job}/actions/start`, body: { params: [{ name: 'unknown', value: '1' }] } })), 'E18621');
  });

  it('accepts the reference $yyyy-$mm-$dd alias in file filters', async () => {
    const { ds } = await setup();
    const job = fresh('job');
    const body = manualJob(ds, 'SELECT count(*) AS c FROM logs');
    body.srcs[0]!.fileFilter = '$yyyy-$mm-$dd/';
    await ok(s, 'POST', `/v2/jobs/${job}`, body);
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    const run = await lastRun(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.match(run.message, /^1 rows/);
  });

  it('fails a run whose filter matches no files with a message naming the location', async () => {
    const { ds } = await setup();
    const job = fresh('job');
    const body = manualJob(ds, 'SELECT count(*) AS c FROM logs');
    body.srcs[0]!.fileFilter = 'nothing-$(year)/';
    await ok(s, 'POST', `/v2/jobs/${job}`, body);
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    const run = await lastRun(job);
    assert.equal(run.status, 'Failed');
    assert.match(run.message, /no files match kodo:\/\/.*logs\/nothing-2026\//);
  });

  it('refuses invalid jobs with precise codes and stores nothing', async () => {
    const { ds } = await setup();
    const bad = async (body: object, code: string, name = fresh('job')): Promise<void> => {
      const res = await s.call({ method: 'POST', url: `/v2/jobs/${name}`, body });
      assert.equal(errorCode(res), code, res.body);
      if (code !== 'E18605') assert.deepEqual(await ok(s, 'GET', `/v2/jobs/${name}/exists`), { exist: false });
    };
    await bad(manualJob(ds, 'SELEC 1'), 'E18618');
    await bad(manualJob(ds, 'SELECT nope FROM logs'), 'E18618');
    await bad(manualJob(ds, 'DELETE FROM logs'), 'E18618');
    await bad(manualJob('missing_ds', 'SELECT 1'), 'E18612');
    await bad({ ...manualJob(ds, 'SELECT 1'), srcs: [{ name: ds, type: 'datasource', tableName: 't' }, { name: ds, type: 'datasource', tableName: 'T' }] }, 'E18613');
    await bad({ ...manualJob(ds, 'SELECT 1'), scheduler: { type: 'crontab', spec: { crontab: '61 * * * *' } } }, 'E18614');
    await bad({ ...manualJob(ds, 'SELECT 1'), scheduler: { type: 'loop', spec: { loop: '5 minutes' } } }, 'E18614');
    await bad({ ...manualJob(ds, 'SELECT 1'), scheduler: { type: 'hourly' } }, 'E18614');
    await bad({ ...manualJob(ds, 'SELECT 1'), container: { type: 'XXL', count: 1 } }, 'E18213');
    await bad({ ...manualJob(ds, 'SELECT 1'), params: [{ name: 'year', default: '1' }] }, 'E18656');
    await bad({ ...manualJob(ds, 'SELECT 1'), srcs: [{ name: ds, type: 'datasource', tableName: 't', fileFilter: '../x' }] }, 'E18638');
    await bad(manualJob(ds, 'SELECT 1'), 'E18604', '9bad');
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, manualJob(ds, 'SELECT 1 AS x'));
    await bad(manualJob(ds, 'SELECT 1'), 'E18605', job);
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/jobs/${fresh('nope')}` })), 'E18606');
  });

  it('validates job exports and refuses deleting a job or datasource still in use', async () => {
    const { ds } = await setup();
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, manualJob(ds, 'SELECT host, n FROM logs'));
    const exp = (spec: object) => s.call({ method: 'POST', url: `/v2/jobs/${job}/exports/${fresh('e')}`, body: { type: 'kodo', spec: { bucket: bucket(), ...spec } } });
    assert.equal(errorCode(await exp({ fields: { a: '#missing' } })), 'E18651');
    assert.equal(errorCode(await exp({ partitionBy: ['nope'] })), 'E18651');
    assert.equal(errorCode(await exp({ fileCount: 1000 })), 'E18651');
    assert.equal(errorCode(await exp({ format: 'orc' })), 'E18651');
    assert.equal(errorCode(await exp({ format: 'json', compression: 'lz4' })), 'E18651');
    assert.equal(errorCode(await exp({ keyPrefix: '../up' })), 'E18638');
    assert.equal(errorCode(await exp({ keyPrefix: '$(undefinedvar)/' })), 'E18657');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/jobs/${job}/exports/${fresh('e')}`, body: { type: 'ftp', spec: {} } })), 'E18651');
    const name = fresh('e');
    await ok(s, 'POST', `/v2/jobs/${job}/exports/${name}`, { type: 'kodo', spec: { bucket: bucket(), keyPrefix: 'a/', compress: true, format: 'text', overwrite: false } });
    assert.equal((await ok(s, 'GET', `/v2/jobs/${job}/exports/${name}`)).spec.compress, true);
    assert.deepEqual((await ok(s, 'GET', `/v2/jobs/${job}/exports`)).exports.map((e: { name: string }) => e.name), [name]);
    assert.deepEqual(await ok(s, 'GET', `/v2/jobs/${job}/exports/${name}/exists`), { exist: true });
    await ok(s, 'PUT', `/v2/jobs/${job}/exports/${name}`, { spec: { bucket: bucket(), keyPrefix: 'b/', format: 'csv' } });
    assert.equal((await ok(s, 'GET', `/v2/jobs/${job}/exports/${name}`)).spec.keyPrefix, 'b/');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/jobs/${job}/exports/${name}`, body: { type: 'kodo', spec: { bucket: bucket() } } })), 'E18610');

    assert.equal(errorCode(await s.call({ method: 'DELETE', url: `/v2/jobs/${job}` })), 'E18608');
    assert.equal(errorCode(await s.call({ method: 'DELETE', url: `/v2/datasources/${ds}` })), 'E18603');
    const down = fresh('down');
    await ok(s, 'DELETE', `/v2/jobs/${job}/exports/${name}`);
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/jobs/${job}/exports/${name}` })), 'E18611');
    await ok(s, 'POST', `/v2/jobs/${down}`, { srcs: [{ name: job, type: 'job', tableName: 'up' }], computation: { code: 'SELECT count(*) AS c FROM up', type: 'SQL' }, scheduler: { type: 'depend' } });
    assert.equal(errorCode(await s.call({ method: 'DELETE', url: `/v2/jobs/${job}` })), 'E18608');
    await ok(s, 'DELETE', `/v2/jobs/${down}`);
    await ok(s, 'DELETE', `/v2/jobs/${job}`);
    await ok(s, 'DELETE', `/v2/datasources/${ds}`);
    assert.equal(existsSync(path.join(s.config.dataDir, 'offline', 'output', 'alice', job)), false);
  });
});
