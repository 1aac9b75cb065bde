/** Job export formats, save modes, hdfs targets, retention; csv/text/parquet sources in runs; PUT replace. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh } from './helpers.ts';
import { jsonl, ManualClock, ok, putHdfs, putObject, readRows, startOffline, writeParquet, type OfflineServer } from './offline-helpers.ts';

const T0 = Date.parse('2026-05-06T07:08:09Z');

describe('offline job exports and source file types', () => {
  let s: OfflineServer;
  before(async () => {
    s = await startOffline({}, { clock: new ManualClock(T0) });
  });
  after(() => s.close());
  const bucket = (): string => fresh('bkt').replaceAll('_', '-');

  async function runOnce(job: string): Promise<{ status: string; message: string }> {
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    await s.offline.scheduler.idle();
    return (await ok(s, 'GET', `/v2/jobs/${job}/history?runId=-1`)).history[0];
  }

  it('joins csv (header and positional), text and parquet sources and writes gzip csv and text exports', async () => {
    const b = bucket();
    putObject(s, b, 'csv/a.csv', 'id;name\n1;one\n2;two\n');
    putObject(s, b, 'pos/a.csv.gz', '1,10\n2,20\n', true);
    putObject(s, b, 'txt/a.log', 'first line\nsecond, with comma\n');
    await writeParquet(path.join(s.config.bucketsDir, b, 'pq/a.parquet'), 'SELECT 1::BIGINT AS id, 1.5::DOUBLE AS w UNION ALL SELECT 2, 2.5');
    const mk = (name: string, spec: object, schema?: object[]) => ok(s, 'POST', `/v2/datasources/${name}`, { type: 'kodo', spec: { bucket: b, ...spec }, ...(schema ? { schema } : {}) });
    const [c, p, t, q] = [fresh('c'), fresh('p'), fresh('t'), fresh('q')];
    await mk(c, { keyPrefixes: ['csv/'], fileType: 'csv', delimiter: ';', containsHeader: true });
    await mk(p, { keyPrefixes: ['pos/'], fileType: 'csv', containsHeader: false }, [{ key: 'id', valtype: 'long' }, { key: 'v', valtype: 'long' }]);
    await mk(t, { keyPrefixes: ['txt/'], fileType: 'text' });
    await mk(q, { keyPrefixes: ['pq/'], fileType: 'parquet' });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, {
      srcs: [{ name: c, type: 'datasource', tableName: 'c' }, { name: p, type: 'datasource', tableName: 'p' }, { name: t, type: 'datasource', tableName: 't' }, { name: q, type: 'datasource', tableName: 'q' }],
      computation: { code: 'SELECT c.id, c.name, p.v, q.w, (SELECT count(*) FROM t) AS lines FROM c JOIN p USING (id) JOIN q USING (id) ORDER BY c.id', type: 'SQL' },
      scheduler: { type: 'manual' },
    });
    const out = bucket();
    await ok(s, 'POST', `/v2/jobs/${job}/exports/csv`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'csv/', format: 'csv', delimiter: '|', compression: 'gzip' } });
    await ok(s, 'POST', `/v2/jobs/${job}/exports/txt`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'txt/', format: 'text', fields: { id: '#id', name: '#name' } } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    const csvDir = path.join(s.config.bucketsDir, out, 'csv', '2026-05-06-07-08-09');
    assert.deepEqual(readdirSync(csvDir), ['part-00000.csv.gz']);
    assert.equal(gunzipSync(readFileSync(path.join(csvDir, 'part-00000.csv.gz'))).toString(), 'id|name|v|w|lines\n1|one|10|1.5|2\n2|two|20|2.5|2\n');
    assert.equal(readFileSync(path.join(s.config.bucketsDir, out, 'txt', '2026-05-06-07-08-09', 'part-00000.txt'), 'utf8'), '1\tone\n2\ttwo\n');
  });

  it('writes every format partitioned and split into fileCount files, the partition columns in the folder names only', async () => {
    const b = bucket();
    putObject(s, b, 'a.json', jsonl([1, 2, 3, 4, 5, 6].map((n) => ({ n, host: n % 2 ? 'web-1' : 'db "2"', note: `line\t${n}` }))));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, fileType: 'json' } });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT host, n, note FROM t' }, scheduler: { type: 'manual' } });
    const out = bucket();
    for (const format of ['json', 'csv', 'text', 'parquet']) {
      for (const compression of format === 'parquet' ? ['snappy'] : ['none', 'gzip']) {
        await ok(s, 'POST', `/v2/jobs/${job}/exports/${format}_${compression}`, { type: 'kodo', spec: { bucket: out, keyPrefix: `${format}-${compression}/`, format, compression, partitionBy: ['host'], fileCount: 2 } });
      }
    }
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    const read = (f: string): string => (f.endsWith('.gz') ? gunzipSync(readFileSync(f)).toString() : readFileSync(f, 'utf8'));
    for (const format of ['json', 'csv', 'text']) {
      for (const compression of ['none', 'gzip']) {
        const root = path.join(s.config.bucketsDir, out, `${format}-${compression}`, '2026-05-06-07-08-09');
        assert.deepEqual(readdirSync(root).sort(), ['host=db%20%222%22', 'host=web-1'].sort(), `${format} ${compression}: ${readdirSync(root)}`);
        for (const [dir, ns] of [['host=web-1', [1, 3, 5]], ['host=db%20%222%22', [2, 4, 6]]] as const) {
          const files = readdirSync(path.join(root, dir)).sort();
          assert.equal(files.length, 2, `${format} ${compression} ${dir}: ${files}`);
          assert.ok(files.every((f) => f.endsWith(compression === 'gzip' ? `.${format === 'text' ? 'txt' : format}.gz` : `.${format === 'text' ? 'txt' : format}`)), files.join());
          const lines = files.flatMap((f) => read(path.join(root, dir, f)).split('\n').filter((l) => l !== '' && l !== 'n,note'));
          const got = lines.map((l) => (format === 'json' ? JSON.stringify(JSON.parse(l)) : l)).sort();
          const want = ns.map((n) => (format === 'json' ? JSON.stringify({ n, note: `line\t${n}` }) : format === 'csv' ? `${n},line\t${n}` : `${n}\tline\t${n}`)).sort();
          assert.deepEqual(got, want, `${format} ${compression} ${dir}`);
        }
      }
    }
    const pq = path.join(s.config.bucketsDir, out, 'parquet-snappy', '2026-05-06-07-08-09');
    const rows = await readRows(`SELECT host, n, note FROM read_parquet('${pq}/*/*.parquet', hive_partitioning=true) ORDER BY n`);
    assert.deepEqual(rows.map((r) => [r.host, Number(r.n)]), [[ 'web-1', 1], ['db "2"', 2], ['web-1', 3], ['db "2"', 4], ['web-1', 5], ['db "2"', 6]]);
  });

  it('honours saveMode append, errorIfExists and ignore', async () => {
    const b = bucket();
    putObject(s, b, 'a.json', jsonl([{ a: 1 }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, fileType: 'json' } });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT a FROM t' }, scheduler: { type: 'manual' } });
    const out = bucket();
    await ok(s, 'POST', `/v2/jobs/${job}/exports/app`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'app/', format: 'json', overwrite: false } });
    await ok(s, 'POST', `/v2/jobs/${job}/exports/err`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'err/', format: 'json', saveMode: 'errorIfExists' } });
    assert.equal((await runOnce(job)).status, 'Successful');
    await ok(s, 'DELETE', `/v2/jobs/${job}/exports/err`);
    await ok(s, 'POST', `/v2/jobs/${job}/exports/ign`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'err/', format: 'json', saveMode: 'ignore' } });
    const second = await runOnce(job);
    assert.equal(second.status, 'Successful', second.message);
    assert.match(second.message, /ign -> kodo:\/\/.*\/err\/2026-05-06-07-08-09: target exists, saveMode ignore/);
    assert.deepEqual(readdirSync(path.join(s.config.bucketsDir, out, 'app', '2026-05-06-07-08-09')).sort(), ['part-00000.json', 'run2-part-00000.json']);
    await ok(s, 'DELETE', `/v2/jobs/${job}/exports/ign`);
    await ok(s, 'POST', `/v2/jobs/${job}/exports/err2`, { type: 'kodo', spec: { bucket: out, keyPrefix: 'err/', format: 'json', saveMode: 'errorIfExists' } });
    const third = await runOnce(job);
    assert.equal(third.status, 'Failed');
    assert.match(third.message, /already exists \(saveMode errorIfExists\)/);
    assert.equal(readdirSync(path.join(s.config.bucketsDir, out, 'app', '2026-05-06-07-08-09')).length, 2, 'a failed run publishes nothing');
  });

  it('writes hdfs exports under the hdfs root, reads hdfs datasources with magic variables in paths, and removes files past retention', async () => {
    putHdfs(s, 'in/2026-05-06/x.json', jsonl([{ k: 'a' }, { k: 'b' }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'hdfs', spec: { paths: ['hdfs://nn:8020/in/$(date)'], fileType: 'json' }, noVerifySchema: true, schema: [{ key: 'k', valtype: 'string' }] });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT k FROM t' }, scheduler: { type: 'manual' } });
    putHdfs(s, 'out/old/stale.json', '{}\n');
    const stale = path.join(s.config.hdfsRoot, 'out/old/stale.json');
    utimesSync(stale, new Date(Date.now() - 10 * 86_400_000), new Date(Date.now() - 10 * 86_400_000));
    putHdfs(s, 'outside/old.json', '{}\n');
    utimesSync(path.join(s.config.hdfsRoot, 'outside/old.json'), new Date(0), new Date(0));
    await ok(s, 'POST', `/v2/jobs/${job}/exports/h`, { type: 'hdfs', spec: { path: 'hdfs://nn:8020/out/$(date)/', format: 'json', retention: 3 } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.match(run.message, /retention removed 1 old file/);
    const rows = await readRows(`SELECT k FROM read_json('${path.join(s.config.hdfsRoot, 'out/2026-05-06')}/*.json') ORDER BY k`);
    assert.deepEqual(rows, [{ k: 'a' }, { k: 'b' }]);
    assert.equal(existsSync(stale), false);
    assert.equal(existsSync(path.join(s.config.hdfsRoot, 'outside/old.json')), true, 'retention stays below the key prefix');
  });

  it('replaces a job in full with PUT, re-checking it like a create', async () => {
    const b = bucket();
    putObject(s, b, 'a.json', jsonl([{ a: 1, z: 'q' }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, fileType: 'json' } });
    const job = fresh('job');
    const base = { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT a FROM t' }, scheduler: { type: 'manual' }, params: [{ name: 'p', default: '1' }] };
    await ok(s, 'POST', `/v2/jobs/${job}`, base);
    await ok(s, 'PUT', `/v2/jobs/${job}`, { ...base, computation: { code: 'SELECT z, a FROM t' }, scheduler: { type: 'loop', spec: { loop: '1h' } }, params: undefined });
    const got = await ok(s, 'GET', `/v2/jobs/${job}`);
    assert.deepEqual(got.schema.map((f: { key: string }) => f.key), ['z', 'a']);
    assert.deepEqual(got.params, []);
    assert.equal(got.scheduler.spec.loop, '1h');
    assert.equal(errorCode(await s.call({ method: 'PUT', url: `/v2/jobs/${job}`, body: { ...base, computation: { code: 'SELECT $(p) AS x FROM t' }, params: [] } })), 'E18657');
    assert.equal(errorCode(await s.call({ method: 'PUT', url: `/v2/jobs/${fresh('nope')}`, body: base })), 'E18606');
    await ok(s, 'POST', `/v2/jobs/${job}/actions/stop`);
  });
});

describe('bodies as the official Go SDK sends them', () => {
  let s: OfflineServer;
  before(async () => { s = await startOffline({}, { clock: new ManualClock(T0) }); });
  after(() => s.close());

  it('accepts zero values and nulls of unset fields (schema null, fileFilter "", saveMode "", fileCount 0, partitionBy null)', async () => {
    const b = fresh('bkt').replaceAll('_', '-');
    putObject(s, b, 'in/a.json', jsonl([{ a: 1 }, { a: 2 }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { region: 'nb', type: 'kodo', spec: { bucket: b, keyPrefixes: ['in/'], fileType: 'json' }, schema: null, noVerifySchema: false, workflow: '' });
    const up = fresh('up');
    await ok(s, 'POST', `/v2/jobs/${up}`, { srcs: [{ name: ds, fileFilter: '', type: 'datasource', tableName: 'src' }], computation: { code: 'SELECT a FROM src', type: 'sql' }, scheduler: { type: 'manual', spec: {} }, params: [{ name: 'p', default: '' }] });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: up, fileFilter: '', type: 'job', tableName: 'u' }], computation: { code: 'SELECT sum(a) AS s FROM u', type: 'SQL' }, scheduler: { type: 'depend' } });
    await ok(s, 'POST', `/v2/jobs/${up}/exports/k`, { type: 'kodo', spec: { bucket: b, keyPrefix: 'k/$(date)/', format: 'parquet', retention: 0, fileCount: 1, saveMode: '', containsHeader: false } });
    await ok(s, 'POST', `/v2/jobs/${job}/exports/h`, { type: 'hdfs', spec: { path: 'hdfs://nn:9000/sdk/$(date)/', format: 'json', partitionBy: null, fileCount: 0, saveMode: '' } });
    await ok(s, 'POST', `/v2/jobs/${up}/actions/start`, { params: [{ name: 'p', value: 'x' }] });
    await s.offline.scheduler.idle();
    const h = (await ok(s, 'GET', `/v2/jobs/${job}/history`)).history;
    assert.equal(h[0].status, 'Successful', h[0].message);
    assert.deepEqual(await readRows(`SELECT s FROM read_json('${path.join(s.config.hdfsRoot, 'sdk', '2026-05-06')}/*.json')`), [{ s: '3' }]);
    const list = await ok(s, 'GET', `/v2/jobs?srcJob=${up}`);
    assert.deepEqual(list.jobs.map((j: { name: string }) => j.name), [job]);
  });
});
