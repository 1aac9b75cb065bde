/** Offline defects found by an audit against issue 11, each checked end to end through the HTTP API. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { AK, AK2, errorCode, fresh, SK, SK2 } from './helpers.ts';
import { jsonl, ManualClock, ok, putHdfs, putObject, readRows, startOffline, writeParquet, type OfflineServer } from './offline-helpers.ts';

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

  it('refuses at job create a variable of a datasource path that is neither a param nor a user variable, and expands a param there at run time', async () => {
    putHdfs(s, 'pv/2026-05-06/run7/a.json', jsonl([{ v: 7 }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'hdfs', spec: { paths: ['hdfs://nn:9000/pv/$(date)/$(part)'], fileType: 'json' }, noVerifySchema: true, schema: [{ key: 'v', valtype: 'long' }] });
    const body = { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT v FROM t' }, scheduler: { type: 'manual' } };
    const res = await s.call({ method: 'POST', url: `/v2/jobs/${fresh('job')}`, body });
    assert.equal(res.statusCode, 400);
    assert.equal(errorCode(res), 'E18657');
    assert.match(res.body, /\$\(part\)/);
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { ...body, params: [{ name: 'part', default: 'run1' }] });
    const put = await s.call({ method: 'PUT', url: `/v2/jobs/${job}`, body });
    assert.equal(errorCode(put), 'E18657', 'PUT is checked like a create');
    const run = await runOnce(job, { params: [{ name: 'part', value: 'run7' }] });
    assert.equal(run.status, 'Successful', run.message);
    assert.match(run.message, /^1 rows/);
    const kb = bucket();
    putObject(s, kb, 'x/a.json', jsonl([{ v: 1 }]));
    const kds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${kds}`, { type: 'kodo', spec: { bucket: kb, keyPrefixes: ['x/', 'y/$(nosuch)/'], fileType: 'json' }, noVerifySchema: true, schema: [{ key: 'v', valtype: 'long' }] });
    const kres = await s.call({ method: 'POST', url: `/v2/jobs/${fresh('job')}`, body: { ...body, srcs: [{ name: kds, type: 'datasource', tableName: 't' }] } });
    assert.equal(errorCode(kres), 'E18657');
    assert.match(kres.body, /\$\(nosuch\)/);
  });

  it('lets PUT add a field to a csv datasource without header, checking it against its own column (not the first)', async () => {
    const b = bucket();
    putObject(s, b, 'c/a.csv', '1,x,true\n2,y,false\n');
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['c/'], fileType: 'csv' }, schema: [{ key: 'id', valtype: 'long' }, { key: 'name', valtype: 'string' }] });
    const wrong = await s.call({ method: 'PUT', url: `/v2/datasources/${ds}`, body: { schema: [{ key: 'id', valtype: 'long' }, { key: 'name', valtype: 'string' }, { key: 'flag', valtype: 'long' }] } });
    assert.equal(errorCode(wrong), 'E18615');
    assert.match(wrong.body, /\\"flag\\" is declared long but the files hold boolean/);
    const res = await s.call({ method: 'PUT', url: `/v2/datasources/${ds}`, body: { schema: [{ key: 'id', valtype: 'long' }, { key: 'name', valtype: 'string' }, { key: 'flag', valtype: 'boolean' }] } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual((await ok(s, 'GET', `/v2/datasources/${ds}`)).schema.map((f: { key: string }) => f.key), ['id', 'name', 'flag']);
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT id FROM t WHERE flag' }, scheduler: { type: 'manual' } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.match(run.message, /^1 rows/);
  });

  it('reads an hdfs path written with a trailing slash as the folder it names, in inference, datasources and runs with a file filter', async () => {
    const dir = fresh('hd');
    putHdfs(s, `${dir}/a.json`, jsonl([{ v: 1 }]));
    putHdfs(s, `${dir}/2026-05-06/b.json`, jsonl([{ v: 2 }]));
    for (const p of [`hdfs://nn:9000/${dir}/`, `/${dir}/`, `hdfs:///${dir}//`]) {
      const res = await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'hdfs', spec: { paths: [p], fileType: 'json' } } });
      assert.equal(res.statusCode, 200, `${p}: ${res.body}`);
    }
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'hdfs', spec: { paths: [`hdfs://nn:9000/${dir}/`], fileType: 'json' } });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't', fileFilter: '$(date)/' }], computation: { code: 'SELECT v FROM t' }, scheduler: { type: 'manual' } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.match(run.message, /^1 rows/);
    const none = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${none}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't', fileFilter: 'nothing/' }], computation: { code: 'SELECT v FROM t' }, scheduler: { type: 'manual' } });
    const failed = await runOnce(none);
    assert.equal(failed.status, 'Failed');
    assert.match(failed.message, new RegExp(`no files match hdfs://nn:9000/${dir}/nothing/ `));
  });

  it('names the result columns as the job schema does (count(*) -> count_star, "Host Name" -> Host_Name) in exports and in the output a downstream job reads', async () => {
    const job = await jsonJob([{ a: 1, h: 'x' }, { a: 2, h: 'x' }], 'SELECT count(*), h AS "Host Name" FROM t GROUP BY ALL');
    assert.deepEqual((await ok(s, 'GET', `/v2/jobs/${job}/schema`)).schema, [{ key: 'count_star', valtype: 'long' }, { key: 'Host_Name', valtype: 'string' }]);
    const out = bucket();
    await ok(s, 'POST', `/v2/jobs/${job}/exports/j`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'j/', format: 'json' } });
    await ok(s, 'POST', `/v2/jobs/${job}/exports/c`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'c/', format: 'csv', fields: { n: '#count_star', host: 'Host_Name' } } });
    const down = fresh('down');
    await ok(s, 'POST', `/v2/jobs/${down}`, { srcs: [{ name: job, type: 'job', tableName: 'u' }], computation: { code: 'SELECT count_star * 10 AS n, Host_Name FROM u' }, scheduler: { type: 'depend' } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.equal(readFileSync(path.join(s.config.bucketsDir, out, 'j', '2026-05-06-07-08-09', 'part-00000.json'), 'utf8'), '{"count_star":2,"Host_Name":"x"}\n');
    assert.equal(readFileSync(path.join(s.config.bucketsDir, out, 'c', '2026-05-06-07-08-09', 'part-00000.csv'), 'utf8'), 'n,host\n2,x\n');
    const d = (await ok(s, 'GET', `/v2/jobs/${down}/history?runId=-1`)).history[0];
    assert.equal(d.status, 'Successful', d.message);
  });

  it('says why a job source that already ran has no output to read, and reads it once the upstream ran again', async () => {
    const up = await jsonJob([{ a: 1 }], 'SELECT a FROM t');
    assert.equal((await runOnce(up)).status, 'Successful');
    const down = fresh('down');
    await ok(s, 'POST', `/v2/jobs/${down}`, { srcs: [{ name: up, type: 'job', tableName: 'u' }], computation: { code: 'SELECT a FROM u' }, scheduler: { type: 'manual' } });
    const first = await runOnce(down);
    assert.equal(first.status, 'Failed');
    assert.equal(first.message, `source job ${up} has no output kept yet: a job's output is kept from its first successful run after a job reading it was created; run ${up} again`);
    assert.equal((await runOnce(up)).status, 'Successful');
    const second = await runOnce(down);
    assert.equal(second.status, 'Successful', second.message);
  });

  it('names unreadable files as kodo:// and hdfs:/// keys in inference errors and run messages, never by their path on the server', async () => {
    const b = bucket();
    await writeParquet(path.join(s.config.bucketsDir, b, 'p/a.parquet'), 'SELECT 1 AS a');
    putObject(s, b, 'p/b.parquet', 'not parquet');
    const inf = await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: b, keyPrefix: 'p/', fileType: 'parquet' } } });
    assert.equal(errorCode(inf), 'E18623');
    assert.match(inf.body, new RegExp(`File 'kodo://${b}/p/b\\.parquet' too small to be a Parquet file`));
    assert.ok(!inf.body.includes(s.dir), inf.body);
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['p/'], fileType: 'parquet' }, noVerifySchema: true, schema: [{ key: 'a', valtype: 'long' }] });
    const dir = fresh('hb');
    putHdfs(s, `${dir}/a.json`, jsonl([{ a: 1 }]));
    putHdfs(s, `${dir}/b.json`, 'garbage\n');
    const hds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${hds}`, { type: 'hdfs', spec: { paths: [dir], fileType: 'json' }, noVerifySchema: true, schema: [{ key: 'a', valtype: 'long' }] });
    for (const [src, shown] of [[ds, `kodo://${b}/p/b.parquet`], [hds, `hdfs:///${dir}/b.json`]] as const) {
      const job = fresh('job');
      await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: src, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT a FROM t' }, scheduler: { type: 'manual' } });
      await ok(s, 'POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket: bucket(), keyPrefix: 'o/', format: 'json' } });
      const run = await runOnce(job);
      assert.equal(run.status, 'Failed');
      assert.ok(run.message.includes(shown), run.message);
      assert.ok(!run.message.includes(s.dir), run.message);
    }
  });

  it('refuses a job PUT that drops a param its job exports or its depend jobs still use, naming it (E18657)', async () => {
    const b = bucket();
    putObject(s, b, 'in/a.json', jsonl([{ a: 1 }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['in/'], fileType: 'json' } });
    const base = { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT a FROM t' }, scheduler: { type: 'manual' } };
    const up = fresh('up');
    await ok(s, 'POST', `/v2/jobs/${up}`, { ...base, params: [{ name: 'region', default: 'eu' }, { name: 'tag', default: 'x' }] });
    await ok(s, 'POST', `/v2/jobs/${up}/exports/e`, { type: 'kodo', spec: { bucket: bucket(), keyPrefix: 'out/$(region)/', format: 'json' } });
    const down = fresh('down');
    await ok(s, 'POST', `/v2/jobs/${down}`, { srcs: [{ name: up, type: 'job', tableName: 'u' }], computation: { code: "SELECT a, '$(tag)' AS tag FROM u" }, scheduler: { type: 'depend' } });
    const noRegion = await s.call({ method: 'PUT', url: `/v2/jobs/${up}`, body: { ...base, params: [{ name: 'tag', default: 'x' }] } });
    assert.equal(noRegion.statusCode, 400);
    assert.equal(errorCode(noRegion), 'E18657');
    assert.match(noRegion.body, /\$\(region\) in the keyPrefix of job export e/);
    const noTag = await s.call({ method: 'PUT', url: `/v2/jobs/${up}`, body: { ...base, params: [{ name: 'region', default: 'eu' }] } });
    assert.equal(errorCode(noTag), 'E18657');
    assert.match(noTag.body, new RegExp(`\\$\\(tag\\) in the SQL of depend job ${down}`));
    assert.deepEqual((await ok(s, 'GET', `/v2/jobs/${up}`)).params.map((p: { name: string }) => p.name), ['region', 'tag'], 'nothing stored');
    await ok(s, 'PUT', `/v2/jobs/${up}`, { ...base, params: [{ name: 'tag', default: 'y' }, { name: 'region', default: 'us' }] });
    const run = await runOnce(up);
    assert.equal(run.status, 'Successful', run.message);
    assert.match(run.message, /\/out\/us: 1 file/);
  });

  it('reads a csv without header whose schema names only its leading columns, ignoring the others', async () => {
    const b = bucket();
    putObject(s, b, 'c/a.csv', '1,x,true\n2,y,false\n');
    putObject(s, b, 'c/b.csv', '3,z\n');
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['c/'], fileType: 'csv' }, schema: [{ key: 'id', valtype: 'long' }, { key: 'name', valtype: 'string' }] });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT * FROM t ORDER BY id' }, scheduler: { type: 'manual' } });
    const out = bucket();
    await ok(s, 'POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'o/', format: 'csv', containsHeader: false } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.equal(readFileSync(path.join(s.config.bucketsDir, out, 'o', '2026-05-06-07-08-09', 'part-00000.csv'), 'utf8'), '1,x\n2,y\n3,z\n');
  });

  it('writes the types of the job schema: a sum (HUGEINT) and an INTEGER as BIGINT, a DECIMAL as DOUBLE, so the export infers back to the same schema', async () => {
    const job = await jsonJob([{ h: 'a', n: 1 }, { h: 'a', n: 2 }], 'SELECT h, sum(n) AS total, count(*)::INTEGER AS c, 1.5::DECIMAL(4,2) AS d FROM t GROUP BY h');
    const schema = (await ok(s, 'GET', `/v2/jobs/${job}/schema`)).schema;
    assert.deepEqual(schema, [{ key: 'h', valtype: 'string' }, { key: 'total', valtype: 'long' }, { key: 'c', valtype: 'long' }, { key: 'd', valtype: 'float' }]);
    const out = bucket();
    await ok(s, 'POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'o/', format: 'parquet' } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    const dir = path.join(s.config.bucketsDir, out, 'o', '2026-05-06-07-08-09');
    const types = await readRows(`SELECT column_name AS k, column_type AS t FROM (DESCRIBE SELECT * FROM read_parquet('${dir}/*.parquet'))`);
    assert.deepEqual(types, [{ k: 'h', t: 'VARCHAR' }, { k: 'total', t: 'BIGINT' }, { k: 'c', t: 'BIGINT' }, { k: 'd', t: 'DOUBLE' }]);
    const inferred = (await ok(s, 'POST', '/v2/schemas', { type: 'kodo', spec: { bucket: out, keyPrefix: 'o/', fileType: 'parquet' } })).schema;
    assert.deepEqual(inferred.map((f: { key: string; valtype: string }) => ({ key: f.key, valtype: f.valtype })), schema);
  });

  it('keeps every column in its place in text exports when a value is null (an empty field), partitioned or not', async () => {
    const job = await jsonJob([{ a: 1, b: null, c: 'z', h: 'x' }, { a: null, b: 'y', c: null, h: 'x' }], 'SELECT a, b, c, h FROM t ORDER BY a NULLS LAST');
    const out = bucket();
    await ok(s, 'POST', `/v2/jobs/${job}/exports/t`, { type: 'kodo', spec: { bucket: out, keyPrefix: 't/', format: 'text' } });
    await ok(s, 'POST', `/v2/jobs/${job}/exports/p`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'p/', format: 'text', partitionBy: ['h'] } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.equal(readFileSync(path.join(s.config.bucketsDir, out, 't', '2026-05-06-07-08-09', 'part-00000.txt'), 'utf8'), '1\t\tz\tx\n\ty\t\tx\n');
    const part = path.join(s.config.bucketsDir, out, 'p', '2026-05-06-07-08-09', 'h=x');
    const lines = readdirSync(part).flatMap((f) => readFileSync(path.join(part, f), 'utf8').split('\n').filter((l) => l !== ''));
    assert.deepEqual(lines.sort(), ['1\t\tz', '\ty\t'].sort());
  });

  it('never writes or applies retention through a symlink that leaves the bucket or the hdfs root', async () => {
    const job = await jsonJob([{ a: 1 }], 'SELECT a FROM t');
    const outside = path.join(s.dir, fresh('outside'));
    mkdirSync(outside, { recursive: true });
    const old = path.join(outside, 'keep.json');
    writeFileSync(old, '{}\n');
    utimesSync(old, new Date(0), new Date(0));
    const out = bucket();
    mkdirSync(path.join(s.config.bucketsDir, out), { recursive: true });
    symlinkSync(outside, path.join(s.config.bucketsDir, out, 'link'));
    const dir = fresh('hl');
    mkdirSync(path.join(s.config.hdfsRoot, dir), { recursive: true });
    symlinkSync(outside, path.join(s.config.hdfsRoot, dir, 'link'));
    for (const [name, type, spec] of [
      ['k', 'kodo', { bucket: out, keyPrefix: 'link/$(date)/' }],
      ['r', 'kodo', { bucket: out, keyPrefix: 'link/k', retention: 1 }],
      ['h', 'hdfs', { path: `hdfs://nn:9000/${dir}/link/$(date)/` }],
    ] as const) {
      await ok(s, 'POST', `/v2/jobs/${job}/exports/${name}`, { type, spec: { ...spec, format: 'json' } });
      const run = await runOnce(job);
      assert.equal(run.status, 'Failed', `${name}: ${run.message}`);
      assert.match(run.message, new RegExp(`job export ${name}: .*symbolic link`));
      assert.deepEqual(readdirSync(outside), ['keep.json'], `${name}: nothing written or removed outside`);
      await ok(s, 'DELETE', `/v2/jobs/${job}/exports/${name}`);
    }
  });

  it('keeps each value under its own name in a SELECT * job after a datasource PUT adds a field in the middle of its schema', async () => {
    const b = bucket();
    putObject(s, b, 'in/a.json', jsonl([{ id: 1, flag: true, name: 'x' }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['in/'], fileType: 'json' }, schema: [{ key: 'id', valtype: 'long' }, { key: 'name', valtype: 'string' }] });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT * FROM t' }, scheduler: { type: 'manual' } });
    const out = bucket();
    await ok(s, 'POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'o/', format: 'json' } });
    await ok(s, 'PUT', `/v2/datasources/${ds}`, { schema: [{ key: 'id', valtype: 'long' }, { key: 'flag', valtype: 'boolean' }, { key: 'name', valtype: 'string' }] });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.equal(readFileSync(path.join(s.config.bucketsDir, out, 'o', '2026-05-06-07-08-09', 'part-00000.json'), 'utf8'), '{"id":1,"name":"x"}\n');
  });

  it('refuses a date field over values that are not times (E18615 naming field and value), for json and csv without header, and accepts ISO times', async () => {
    const b = bucket();
    putObject(s, b, 'j/a.json', jsonl([{ d: '2026-01-02 03:04:05' }, { d: 'yesterday' }]));
    putObject(s, b, 'c/a.csv', '1,2026-01-02\n2,soon\n');
    putObject(s, b, 'g/a.json', jsonl([{ d: '2026-01-02 03:04:05' }, { d: '2026-01-03' }, { d: null }]));
    const bad = [
      { spec: { keyPrefixes: ['j/'], fileType: 'json' }, schema: [{ key: 'd', valtype: 'date' }], value: 'yesterday' },
      { spec: { keyPrefixes: ['c/'], fileType: 'csv' }, schema: [{ key: 'n', valtype: 'long' }, { key: 'd', valtype: 'date' }], value: 'soon' },
    ];
    for (const c of bad) {
      const res = await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec: { bucket: b, ...c.spec }, schema: c.schema } });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(errorCode(res), 'E18615');
      assert.match(res.body, new RegExp(`field \\\\"d\\\\" is declared date but the files hold \\\\"${c.value}\\\\"`));
    }
    const good = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${good}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['g/'], fileType: 'json' }, schema: [{ key: 'd', valtype: 'date' }] });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: good, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT count(d) AS c FROM t' }, scheduler: { type: 'manual' } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
  });

  it('checks the files a datasource PUT points to against the whole schema, unless noVerifySchema', async () => {
    const b = bucket();
    putObject(s, b, 'c/a.json', jsonl([{ a: 1, b: 'x' }]));
    putObject(s, b, 'd/a.json', jsonl([{ a: 2 }]));
    putObject(s, b, 'e/a.json', jsonl([{ a: 3, b: 'z', c: true }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, keyPrefixes: ['c/'], fileType: 'json' } });
    const moved = await s.call({ method: 'PUT', url: `/v2/datasources/${ds}`, body: { spec: { bucket: b, keyPrefixes: ['d/'], fileType: 'json' } } });
    assert.equal(errorCode(moved), 'E18615');
    assert.match(moved.body, /field \\"b\\" is not in the files/);
    const empty = await s.call({ method: 'PUT', url: `/v2/datasources/${ds}`, body: { spec: { bucket: b, keyPrefixes: ['nothing/'], fileType: 'json' } } });
    assert.equal(errorCode(empty), 'E18620');
    assert.deepEqual((await ok(s, 'GET', `/v2/datasources/${ds}`)).spec.keyPrefixes, ['c/'], 'nothing stored');
    await ok(s, 'PUT', `/v2/datasources/${ds}`, { spec: { bucket: b, keyPrefixes: ['e/'], fileType: 'json' } });
    await ok(s, 'PUT', `/v2/datasources/${ds}`, { spec: { bucket: b, keyPrefixes: ['d/'], fileType: 'json' }, noVerifySchema: true });
    assert.deepEqual((await ok(s, 'GET', `/v2/datasources/${ds}`)).spec.keyPrefixes, ['d/']);
  });
});

describe('offline audit: per-account grants of job exports', () => {
  let s: OfflineServer;
  before(async () => {
    s = await startOffline({
      accounts: [
        { id: 'alice', accessKey: AK, secretKey: SK },
        { id: 'bob', accessKey: AK2, secretKey: SK2, buckets: ['bobs-in', 'bobs-out'], hdfsPaths: ['bob'] },
      ],
    }, { clock: new ManualClock(T0) });
  });
  after(() => s.close());
  const asBob = (method: string, url: string, body?: unknown) => s.call({ method, url, body, ak: AK2, sk: SK2 });

  it('refuses job exports outside the grants with 403 E18665, also when a param moves an hdfs path out of them at run time', async () => {
    putObject(s, 'bobs-in', 'a.json', jsonl([{ v: 1 }]));
    const ds = fresh('ds');
    assert.equal((await asBob('POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: 'bobs-in', fileType: 'json' } })).statusCode, 200);
    const job = fresh('job');
    const created = await asBob('POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT v FROM t' }, scheduler: { type: 'manual' }, params: [{ name: 'p', default: '' }] });
    assert.equal(created.statusCode, 200, created.body);
    for (const [type, spec] of [['kodo', { bucket: 'alice-bucket', keyPrefix: 'x/' }], ['hdfs', { path: 'hdfs://nn:9000/alice/out/' }], ['hdfs', { path: '/$(p)/out/' }]] as const) {
      const res = await asBob('POST', `/v2/jobs/${job}/exports/${fresh('e')}`, { type, spec: { ...spec, format: 'json' } });
      assert.equal(res.statusCode, 403, `${JSON.stringify(spec)}: ${res.body}`);
      assert.equal(errorCode(res), 'E18665');
    }
    const okRes = await asBob('POST', `/v2/jobs/${job}/exports/h`, { type: 'hdfs', spec: { path: 'hdfs://nn:9000/bob$(p)/out/', format: 'json' } });
    assert.equal(okRes.statusCode, 200, okRes.body);
    assert.equal((await asBob('POST', `/v2/jobs/${job}/actions/start`, { params: [{ name: 'p', value: 'by' }] })).statusCode, 200);
    await s.offline.scheduler.idle();
    const run = JSON.parse((await asBob('GET', `/v2/jobs/${job}/history?runId=-1`)).body).history[0];
    assert.equal(run.status, 'Failed', run.message);
    assert.match(run.message, /E18665/);
    assert.equal(existsSync(path.join(s.config.hdfsRoot, 'bobby')), false, 'nothing written outside the grant');
    assert.equal((await asBob('POST', `/v2/jobs/${job}/actions/start`, { params: [{ name: 'p', value: '/day1' }] })).statusCode, 200);
    await s.offline.scheduler.idle();
    const good = JSON.parse((await asBob('GET', `/v2/jobs/${job}/history?runId=-1`)).body).history[0];
    assert.equal(good.status, 'Successful', good.message);
    assert.ok(existsSync(path.join(s.config.hdfsRoot, 'bob/day1/out')));
  });
});
