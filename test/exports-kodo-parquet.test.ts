import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { exportTag } from '../src/exports/kodo/naming.ts';
import { objectStoreFor } from '../src/objectstore/index.ts';
import { startS3Emulator, testConfig } from './buckets-helpers.ts';
import { batchOf, bucketFiles, clock, kodoSink, never, point, repoRow, sinkCtx } from './exports-kodo-helpers.ts';

const { config, dir } = testConfig();
after(() => rmSync(dir, { recursive: true, force: true }));
const T0 = Date.UTC(2017, 0, 12, 7, 30, 0);

async function readParquet(file: string): Promise<{ types: Record<string, string>; rows: Record<string, unknown>[] }> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const d = await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`);
    const types = Object.fromEntries(d.getRowObjectsJson().map((r) => [String(r.column_name), String(r.column_type)]));
    const r = await conn.runAndReadAll(`SELECT * FROM read_parquet('${file}')`);
    return { types, rows: r.getRowObjectsJson() as Record<string, unknown>[] };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

describe('kodo sink: parquet', () => {
  it('writes typed columns through DuckDB, nested maps as STRUCTs and arrays as lists, read back with DuckDB', async () => {
    const bucket = `pq-${process.pid}-1`;
    const repo = repoRow('pq');
    const c = clock(T0);
    const sink = await kodoSink({ bucket, format: 'parquet', compress: true, keyPrefix: 'pq/' }, sinkCtx(config, repo, c));
    await sink.deliver(batchOf(0, [point(1), point(2)], T0), never);
    await sink.deliver(batchOf(2, [{ host: 'only' }, { host: 'big', latency: 2n ** 62n }], T0), never);
    c.t += 30_000;
    assert.equal(await sink.tick!(never), 4);
    const key = `pq/2017-01-12-07-30-00_${exportTag('alice', repo, 'e1')}_0-3.parquet`;
    assert.deepEqual(bucketFiles(config, bucket), [key], 'compress is ignored for parquet');
    const { types, rows } = await readParquet(path.join(config.bucketsDir, bucket, key));
    assert.deepEqual(types, {
      host: 'VARCHAR', latency: 'BIGINT', cpu: 'DOUBLE', ok: 'BOOLEAN', ts: 'TIMESTAMP', tags: 'VARCHAR[]', req: 'STRUCT(path VARCHAR, status BIGINT)',
    });
    assert.deepEqual(rows[0], { host: 'h1', latency: '10', cpu: 0.25, ok: false, ts: '2017-01-12 07:30:01', tags: ['a', 't1'], req: { path: '/p/1', status: '201' } });
    assert.deepEqual(rows[2], { host: 'only', latency: null, cpu: null, ok: null, ts: null, tags: null, req: null });
    assert.equal(rows[3]?.latency, String(2n ** 62n), 'longs beyond 2^53 stay exact');
    await sink.close();
  });

  it('maps output columns, including a nested field, to typed parquet columns', async () => {
    const bucket = `pq-${process.pid}-2`;
    const repo = repoRow('pqmap');
    const c = clock(T0);
    const sink = await kodoSink({ bucket, format: 'parquet', fields: { server: '#host', status: '#req.status', when: '#ts' } }, sinkCtx(config, repo, c));
    await sink.deliver(batchOf(0, [point(3)], T0), never);
    c.t += 30_000;
    await sink.tick!(never);
    const [key] = bucketFiles(config, bucket);
    const { types, rows } = await readParquet(path.join(config.bucketsDir, bucket, key as string));
    assert.deepEqual(types, { server: 'VARCHAR', status: 'BIGINT', when: 'TIMESTAMP' });
    assert.deepEqual(rows, [{ server: 'h3', status: '203', when: '2017-01-12 07:30:03' }]);
    await sink.close();
  });

  it('rotates parquet files by the size of the source records', async () => {
    const bucket = `pq-${process.pid}-3`;
    const repo = repoRow('pqsize');
    const c = clock(T0);
    const sink = await kodoSink({ bucket, format: 'parquet', rotateStrategy: 'size', rotateSize: 1000 }, sinkCtx(config, repo, c));
    const b = batchOf(0, Array.from({ length: 30 }, (_v, i) => point(i)), T0);
    const bytes = b.lines.reduce((sum, l) => sum + l.length + 1, 0);
    const r = await sink.deliver(b, never);
    const files = bucketFiles(config, bucket);
    assert.equal(files.length, Math.floor(bytes / 1000), `${bytes} source bytes in files of 1000`);
    let rows = 0;
    for (const f of files) rows += (await readParquet(path.join(config.bucketsDir, bucket, f))).rows.length;
    assert.equal(rows, r.ackedThrough);
    await sink.close();
  });
});

describe('kodo sink: s3rver emulator', () => {
  it('publishes files to a bucket of the S3 endpoint and rewrites the same key on redelivery', async () => {
    const s3 = await startS3Emulator(['exports']);
    const { config: s3config, dir: d2 } = testConfig({ s3Endpoint: s3.endpoint, s3AccessKey: 'S3RVER', s3SecretKey: 'S3RVER' });
    try {
      const repo = repoRow('s3repo');
      const c = clock(T0);
      const spec = { bucket: 'exports', keyPrefix: 'app/$(year)/$(mon)/', format: 'json', compress: false };
      const sink = await kodoSink(spec, sinkCtx(s3config, repo, c));
      await sink.deliver(batchOf(0, [point(1), point(2)], T0), never);
      c.t += 30_000;
      assert.equal(await sink.tick!(never), 2);
      await sink.close();
      const again = await kodoSink(spec, sinkCtx(s3config, repo, c));
      await again.deliver(batchOf(0, [point(1), point(2), point(3)], T0), never);
      c.t += 30_000;
      assert.equal(await again.tick!(never), 3);
      await again.close();
      const store = objectStoreFor(s3config);
      const keys: string[] = [];
      for await (const o of store.list('exports', 'app/')) keys.push(o.key);
      const tag = exportTag('alice', repo, 'e1');
      assert.deepEqual(keys.sort(), [`app/2017/01/${tag}_0-1.json`, `app/2017/01/${tag}_2-2.json`]);
      const body = await text(await store.get('exports', `app/2017/01/${tag}_0-1.json`));
      assert.deepEqual(body.trim().split('\n').map((l) => JSON.parse(l).host), ['h1', 'h2']);
      await store.close();
    } finally {
      await s3.close();
      rmSync(d2, { recursive: true, force: true });
    }
  });
});
