/**
 * Offline datasources, schema inference and job exports on an S3-compatible
 * bucket store. S3 is the s3rver emulator (no real S3-compatible server
 * installs here), started on a free port; the product code talks to it with
 * the official AWS SDK as it would to a real endpoint.
 */
import assert from 'node:assert/strict';
import { createWriteStream, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { text } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { objectStoreFor, type ObjectStore } from '../src/objectstore/index.ts';
import { startS3Emulator, tempDir, type S3Emulator } from './buckets-helpers.ts';
import { AK, AK2, errorCode, SK, SK2 } from './helpers.ts';
import { jsonl, ManualClock, ok, readRows, startOffline, writeParquet, type OfflineServer } from './offline-helpers.ts';

const T0 = Date.parse('2026-05-06T07:08:09Z');
const BUCKETS = ['src-a', 'src-b', 'src-c', 'out-a', 'out-b', 'out-gone', 'big-a', 'bob-only'];

describe('offline on the s3rver emulator (S3 bucket store)', () => {
  let s3: S3Emulator;
  let s: OfflineServer;
  let store: ObjectStore;
  const work = tempDir();
  before(async () => {
    s3 = await startS3Emulator(BUCKETS);
    s = await startOffline({
      s3Endpoint: s3.endpoint, s3AccessKey: 'S3RVER', s3SecretKey: 'S3RVER', offlineFetchMax: '64KB',
      accounts: [{ id: 'alice', accessKey: AK, secretKey: SK }, { id: 'bob', accessKey: AK2, secretKey: SK2, buckets: ['bob-only'] }],
    }, { clock: new ManualClock(T0) });
    store = objectStoreFor(s.config);
  });
  after(async () => {
    await s.close();
    await s3.close();
  });

  let n = 0;
  const uniq = (p: string): string => `${p}_${++n}`;
  async function putParquet(bucket: string, key: string, select: string): Promise<void> {
    const file = path.join(work, `${++n}.parquet`);
    await writeParquet(file, select);
    await store.putFile(bucket, key, file);
  }
  async function runOnce(job: string): Promise<{ status: string; message: string }> {
    await ok(s, 'POST', `/v2/jobs/${job}/actions/start`);
    await s.offline.scheduler.idle();
    return (await ok(s, 'GET', `/v2/jobs/${job}/history?runId=-1`)).history[0];
  }
  /** A json datasource over `bucket`/`prefix` and a manual job running `sql` over it as table t; the job's name. */
  async function manualJob(bucket: string, prefix: string, sql: string): Promise<string> {
    const ds = uniq('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket, keyPrefix: prefix, fileType: 'json' } });
    const job = uniq('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: sql }, scheduler: { type: 'manual' } });
    return job;
  }
  async function keys(bucket: string, prefix = ''): Promise<string[]> {
    const out: string[] = [];
    for await (const o of store.list(bucket, prefix)) out.push(o.key);
    return out;
  }

  it('infers schemas from S3 objects: json lines, gzip json lines and parquet', async () => {
    await store.put('src-a', 'infer/j/a.json', jsonl([{ id: 1, name: 'x', ok: true }, { id: 2, name: 'y', ok: false }]));
    await store.put('src-a', 'infer/g/a.json.gz', gzipSync(jsonl([{ v: 1.5, when: '2026-05-06 07:00:00' }])));
    await putParquet('src-a', 'infer/p/a.parquet', 'SELECT 1::BIGINT AS n, 2.5::DOUBLE AS w, \'s\' AS t');
    const infer = async (prefix: string, fileType: string) => (await ok(s, 'POST', '/v2/schemas', { type: 'kodo', spec: { bucket: 'src-a', keyPrefix: prefix, fileType } })).schema;
    assert.deepEqual(await infer('infer/j/', 'json'), [
      { key: 'id', valtype: 'long', required: false }, { key: 'name', valtype: 'string', required: false }, { key: 'ok', valtype: 'boolean', required: false },
    ]);
    assert.deepEqual(await infer('infer/g/', 'json'), [{ key: 'v', valtype: 'float', required: false }, { key: 'when', valtype: 'date', required: false }]);
    assert.deepEqual(await infer('infer/p/', 'parquet'), [
      { key: 'n', valtype: 'long', required: false }, { key: 'w', valtype: 'float', required: false }, { key: 't', valtype: 'string', required: false },
    ]);
    const none = await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: 'src-a', keyPrefix: 'nothing/', fileType: 'json' } } });
    assert.equal(errorCode(none), 'E18620');
    const missing = await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: 'no-such-bucket', fileType: 'json' } } });
    assert.equal(errorCode(missing), 'E18619');
    assert.deepEqual(readdirSync(s.offline.deps.tmpDir).filter((f) => f.startsWith('fetch-')), [], 'downloads are removed after inference');
  });

  it('runs a job over an S3 datasource with a file filter and exports partitioned parquet to another S3 bucket, read back with DuckDB', async () => {
    for (const day of ['05', '06']) {
      await store.put('src-b', `logs/2026-05-${day}/a.json`, jsonl([{ host: 'h1', ms: 10, region: 'nb' }, { host: 'h2', ms: 20, region: 'bj' }]));
      await store.put('src-b', `logs/2026-05-${day}/b.json.gz`, gzipSync(jsonl([{ host: 'h1', ms: 30, region: 'nb' }])));
    }
    const ds = uniq('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: 'src-b', keyPrefixes: ['logs/'], fileType: 'json' } });
    await store.put('src-b', 'logs/2026-05-06/skip.txt', 'not json'); // outside the file filter
    const job = uniq('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, {
      srcs: [{ name: ds, type: 'datasource', tableName: 't', fileFilter: '$(year)-$(mon)-$(day)/*.json*' }],
      computation: { code: 'SELECT region, host, sum(ms) AS total, count(*) AS n FROM t GROUP BY region, host', type: 'SQL' },
      scheduler: { type: 'manual' },
    });
    await ok(s, 'POST', `/v2/jobs/${job}/exports/pq`, { type: 'kodo', spec: { bucket: 'out-a', keyPrefix: 'agg/$(date)', format: 'parquet', partitionBy: ['region'] } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.match(run.message, /pq -> kodo:\/\/out-a\/agg\/2026-05-06: 2 file\(s\), 2 rows/);
    const got = await keys('out-a', 'agg/2026-05-06/');
    assert.equal(got.length, 3, got.join(', '));
    assert.ok(got.includes('agg/2026-05-06/_SUCCESS'));
    const data = got.filter((k) => !k.endsWith('_SUCCESS'));
    assert.deepEqual(data.map((k) => k.split('/')[2]).sort(), ['region=bj', 'region=nb']);
    const manifest = JSON.parse(await text(await store.get('out-a', 'agg/2026-05-06/_SUCCESS'))) as { keys: string[] };
    assert.deepEqual(manifest.keys.map((k) => 'agg/2026-05-06/' + k).sort(), data.sort());
    // Download and read back with plain DuckDB, partitions restored from the hive paths.
    const local = path.join(work, uniq('dl'));
    for (const k of data) {
      const file = path.join(local, k);
      mkdirSync(path.dirname(file), { recursive: true });
      await pipeline(await store.get('out-a', k), createWriteStream(file));
    }
    const rows = await readRows(`SELECT region, host, total, n FROM read_parquet('${local}/agg/2026-05-06/*/*.parquet', hive_partitioning=true) ORDER BY region, host`);
    assert.deepEqual(rows, [{ region: 'bj', host: 'h2', total: '20', n: '1' }, { region: 'nb', host: 'h1', total: '40', n: '2' }], 'sum() is written as the job schema says: long (BIGINT)');

    // Overwrite: a second run replaces the output; the old keys are gone once the new manifest is in.
    const second = await runOnce(job);
    assert.equal(second.status, 'Successful', second.message);
    const after2 = (await keys('out-a', 'agg/2026-05-06/')).filter((k) => !k.endsWith('_SUCCESS'));
    assert.equal(after2.length, 2);
    assert.equal(after2.filter((k) => data.includes(k)).length, 0, 'the previous run\'s objects were deleted');

    // A datasource reading below the export's folder honours its manifest: an unlisted object is not read.
    await store.put('out-a', 'agg/2026-05-06/region=nb/zz-leftover.parquet', 'not parquet');
    const schema = await ok(s, 'POST', '/v2/schemas', { type: 'kodo', spec: { bucket: 'out-a', keyPrefix: 'agg/2026-05-06/region=nb/', fileType: 'parquet' } });
    assert.deepEqual(schema.schema.map((f: { key: string }) => f.key), ['host', 'total', 'n']);
  });

  it('appends to an S3 export: the manifest keeps the earlier runs\' keys and a single-file target gets a run suffix', async () => {
    await store.put('src-c', 'app/a.json', jsonl([{ a: 5 }]));
    const job = await manualJob('src-c', 'app/', 'SELECT a FROM t');
    await ok(s, 'POST', `/v2/jobs/${job}/exports/app`, { type: 'kodo', spec: { bucket: 'out-b', keyPrefix: `${job}/`, format: 'json', saveMode: 'append' } });
    await ok(s, 'POST', `/v2/jobs/${job}/exports/one`, { type: 'kodo', spec: { bucket: 'out-b', keyPrefix: `${job}-$(date).json`, format: 'json', saveMode: 'append' } });
    assert.equal((await runOnce(job)).status, 'Successful');
    const second = await runOnce(job);
    assert.equal(second.status, 'Successful', second.message);
    const folder = `${job}/2026-05-06-07-08-09/`;
    const data = (await keys('out-b', folder)).filter((k) => !k.endsWith('_SUCCESS'));
    assert.equal(data.length, 2);
    const manifest = JSON.parse(await text(await store.get('out-b', folder + '_SUCCESS'))) as { keys: string[] };
    assert.deepEqual(manifest.keys.map((k) => folder + k).sort(), data.sort());
    assert.deepEqual((await keys('out-b', `${job}-2026`)).sort(), [`${job}-2026-05-06.json`, `${job}-2026-05-06.json.2`]);
    const ds2 = uniq('ds');
    await ok(s, 'POST', `/v2/datasources/${ds2}`, { type: 'kodo', spec: { bucket: 'out-b', keyPrefix: `${job}/`, fileType: 'json' } });
    const job2 = uniq('job');
    await ok(s, 'POST', `/v2/jobs/${job2}`, { srcs: [{ name: ds2, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT count(*) AS c FROM t' }, scheduler: { type: 'manual' } });
    const counted = await runOnce(job2);
    assert.equal(counted.status, 'Successful', counted.message);
    assert.match(counted.message, /^1 rows/);
  });

  it('writes a manual job\'s export whose key prefix has no variable to that key itself (the file name), without a batch time', async () => {
    await store.put('src-c', 'one/a.json', jsonl([{ a: 7 }]));
    const job = await manualJob('src-c', 'one/', 'SELECT a FROM t');
    await ok(s, 'POST', `/v2/jobs/${job}/exports/f`, { type: 'kodo', spec: { bucket: 'out-b', keyPrefix: `${job}/result.json`, format: 'json' } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.deepEqual(await keys('out-b', `${job}/`), [`${job}/result.json`]);
    assert.equal(await text(await store.get('out-b', `${job}/result.json`)), '{"a":7}\n');
  });

  it('reads only the keys of an S3 export\'s manifest: a run still uploading (or its leftovers) stays invisible', async () => {
    await store.put('src-c', 'mf/out/p1.json', jsonl([{ a: 1 }]));
    await store.put('src-c', 'mf/out/_SUCCESS', JSON.stringify({ runId: 1, keys: ['p1.json'] }));
    await store.put('src-c', 'mf/out/p2.json', jsonl([{ a: 2 }])); // uploaded by a run that has not published yet
    await store.put('src-c', 'mf/fresh/_PENDING', '{}');
    await store.put('src-c', 'mf/fresh/p.json', jsonl([{ a: 3 }])); // a first run still uploading
    const job = await manualJob('src-c', 'mf/', 'SELECT sum(a) AS s FROM t');
    await ok(s, 'POST', `/v2/jobs/${job}/exports/j`, { type: 'kodo', spec: { bucket: 'out-b', keyPrefix: 'sum', format: 'json' } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Successful', run.message);
    assert.match(run.message, /^1 rows/);
    const [k] = (await keys('out-b', 'sum')).filter((x) => !x.endsWith('_SUCCESS'));
    assert.equal((await text(await store.get('out-b', k as string))).trim(), '{"s":1}');
  });

  it('refuses buckets outside the account\'s grants with E18665 for datasources, schemas and job exports, and a job export to a bucket missing on S3 with E18619', async () => {
    await store.put('bob-only', 'x/a.json', jsonl([{ a: 1 }]));
    const asBob = (method: string, url: string, body: unknown) => s.call({ method, url, body, ak: AK2, sk: SK2 });
    const ds = uniq('ds');
    const refused = await asBob('POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: 'src-a', keyPrefix: 'infer/j/', fileType: 'json' } });
    assert.equal(refused.statusCode, 403);
    assert.equal(errorCode(refused), 'E18665');
    assert.match(refused.body, /src-a.*not granted/);
    assert.equal(errorCode(await asBob('POST', '/v2/schemas', { type: 'kodo', spec: { bucket: 'src-a', fileType: 'json' } })), 'E18665');
    assert.equal((await asBob('POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: 'bob-only', keyPrefix: 'x/', fileType: 'json' } })).statusCode, 200);
    const job = uniq('job');
    assert.equal((await asBob('POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT a FROM t' }, scheduler: { type: 'manual' } })).statusCode, 200);
    const exp = await asBob('POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket: 'out-a', keyPrefix: 'bob/', format: 'json' } });
    assert.equal(exp.statusCode, 403);
    assert.equal(errorCode(exp), 'E18665');
    assert.deepEqual(await keys('out-a', 'bob/'), [], 'nothing written');
    const granted = await asBob('POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket: 'bob-only', keyPrefix: 'ok/', format: 'json' } });
    assert.equal(granted.statusCode, 200, granted.body);
    const alice = uniq('job');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: 'src-a', keyPrefix: 'infer/j/', fileType: 'json' } });
    await ok(s, 'POST', `/v2/jobs/${alice}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT id FROM t' }, scheduler: { type: 'manual' } });
    const gone = await s.call({ method: 'POST', url: `/v2/jobs/${alice}/exports/e`, body: { type: 'kodo', spec: { bucket: 'not-on-s3', format: 'json' } } });
    assert.equal(gone.statusCode, 404);
    assert.equal(errorCode(gone), 'E18619');
  });

  it('fails a run whose matched S3 objects exceed offlineFetchMax with E18666, downloading nothing', async () => {
    const big = jsonl(Array.from({ length: 1200 }, (_v, i) => ({ i, pad: 'x'.repeat(40) })));
    assert.ok(big.length > 64 * 1024);
    await store.put('big-a', 'small/a.json', jsonl([{ i: 1, pad: 'x' }]));
    const ds = uniq('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: 'big-a', keyPrefix: 'small/', fileType: 'json' } });
    await store.put('big-a', 'small/b.json', big);
    const job = uniq('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT count(*) AS c FROM t' }, scheduler: { type: 'manual' } });
    const run = await runOnce(job);
    assert.equal(run.status, 'Failed');
    assert.match(run.message, /E18666/);
    assert.match(run.message, /exceeds offlineFetchMax \(65536 bytes\)/);
    const res = await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: 'big-a', keyPrefix: 'small/b', fileType: 'json' } } });
    assert.equal(res.statusCode, 400);
    assert.equal(errorCode(res), 'E18666');
    assert.deepEqual(readdirSync(s.offline.deps.tmpDir).filter((f) => f.startsWith('fetch-')), [], 'no download left behind');
  });

  it('fails a run whose S3 export bucket was removed after the export was created, naming the export and the bucket', async () => {
    await store.put('src-c', 'gone/a.json', jsonl([{ a: 1 }]));
    const job = await manualJob('src-c', 'gone/', 'SELECT a FROM t');
    await ok(s, 'POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket: 'out-gone', keyPrefix: 'x/', format: 'json' } });
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await client.send(new DeleteBucketCommand({ Bucket: 'out-gone' }));
    client.destroy();
    const run = await runOnce(job);
    assert.equal(run.status, 'Failed');
    assert.match(run.message, /job export e: .*bucket "out-gone" does not exist/);
    assert.deepEqual(readdirSync(s.offline.deps.tmpDir).filter((f) => f.startsWith('fetch-')), [], 'the run\'s downloads are removed');
  });
});
