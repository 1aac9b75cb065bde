import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { ApiError } from '../src/errors.ts';
import { exportTag } from '../src/exports/kodo/naming.ts';
import { RetryableSinkError } from '../src/exports/shared/sink.ts';
import { testConfig } from './buckets-helpers.ts';
import { batchOf, bucketFiles, clock, kodoSink, never, point, readObject, repoRow, sinkCtx } from './exports-kodo-helpers.ts';

const { config, dir } = testConfig();
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshBucket = (): string => `kodo-${process.pid}-${++n}`;
const T0 = Date.UTC(2017, 0, 12, 7, 30, 0); // 2017-01-12 07:30:00 UTC = 15:30:00 in Asia/Shanghai

describe('kodo sink: formats', () => {
  it('writes json lines of every field by default, publishing the file once the interval elapsed and acking it then', async () => {
    const bucket = freshBucket();
    const repo = repoRow('web');
    const c = clock(T0);
    const sink = await kodoSink({ bucket, keyPrefix: 'logs/', email: 'me@example.com', accessKey: 'AK' }, sinkCtx(config, repo, c));
    const r = await sink.deliver(batchOf(0, [point(1), point(2), { host: 'h3' }], T0), never);
    assert.equal(r.ackedThrough, 0, 'nothing acked while the file is open');
    assert.deepEqual(bucketFiles(config, bucket), [], 'no object before the file closes');
    c.t = T0 + 29_999;
    assert.equal(await sink.tick!(never), 0);
    assert.deepEqual(bucketFiles(config, bucket), []);
    c.t = T0 + 30_000;
    assert.equal(await sink.tick!(never), 3);
    const key = `logs/2017-01-12-07-30-00_${exportTag('alice', repo, 'e1')}_0-2.json`;
    assert.deepEqual(bucketFiles(config, bucket), [key]);
    const lines = readObject(config, bucket, key).split('\n');
    assert.equal(lines.pop(), '', 'file ends with a newline');
    assert.deepEqual(lines.map((l) => JSON.parse(l)), [
      { host: 'h1', latency: 10, cpu: 0.25, ok: false, ts: '2017-01-12T15:30:01+08:00', tags: ['a', 't1'], req: { path: '/p/1', status: 201 } },
      { host: 'h2', latency: 20, cpu: 0.5, ok: true, ts: '2017-01-12T15:30:02+08:00', tags: ['a', 't2'], req: { path: '/p/2', status: 202 } },
      { host: 'h3' },
    ]);
    await sink.close();
  });

  it('writes csv with a header, the delimiter, quoting, mapped and nested columns, gzipped when compress is set', async () => {
    const bucket = freshBucket();
    const repo = repoRow('csvrepo');
    const c = clock(T0);
    const sink = await kodoSink({ bucket, format: 'csv', delimiter: ';', compress: true, fields: { server: '#host', ms: '#latency', status: '#req.status', tags: '#tags' } }, sinkCtx(config, repo, c));
    await sink.deliver(batchOf(5, [point(1), { host: 'a;b "q"', latency: 7 }], T0), never);
    c.t += 30_000;
    assert.equal(await sink.tick!(never), 7);
    const [key] = bucketFiles(config, bucket);
    assert.match(key ?? '', /^2017-01-12-07-30-00_[0-9a-f]{8}_5-6\.csv\.gz$/);
    assert.equal(readObject(config, bucket, key as string), 'server;ms;status;tags\nh1;10;201;"[""a"",""t1""]"\n"a;b ""q""";7;;\n');
    await sink.close();
  });

  it('writes text as the data-push line format: stored lines verbatim without fields, column=value pairs with fields', async () => {
    const bucket = freshBucket();
    const repo = repoRow('textrepo');
    const c = clock(T0);
    const verbatim = await kodoSink({ bucket, keyPrefix: 'all/', format: 'text' }, sinkCtx(config, repo, c, 'all'));
    const mapped = await kodoSink({ bucket, keyPrefix: 'some/', format: 'TEXT', fields: { h: '#host', p: '#req.path' } }, sinkCtx(config, repo, c, 'some'));
    const b = batchOf(0, [point(1), { host: 'tab\there', req: { path: 'x' } }], T0);
    await verbatim.deliver(b, never);
    await mapped.deliver(b, never);
    c.t += 30_000;
    await verbatim.tick!(never);
    await mapped.tick!(never);
    const [all, some] = bucketFiles(config, bucket);
    assert.match(all ?? '', /^all\/.*_0-1\.txt$/);
    assert.equal(readObject(config, bucket, all as string), b.lines.join('\n') + '\n');
    assert.equal(readObject(config, bucket, some as string), 'h=h1\tp=/p/1\nh=tab\\there\tp=x\n');
    await verbatim.close();
    await mapped.close();
  });
});

describe('kodo sink: rotation and keys', () => {
  it('closes files by size at the same records however the batches are cut, and acks only closed files', async () => {
    const run = async (cuts: number[]): Promise<string[]> => {
      const bucket = freshBucket();
      const repo = repoRow('sized');
      const c = clock(T0);
      const sink = await kodoSink({ bucket, keyPrefix: 'p/', format: 'json', rotateStrategy: 'size', rotateSize: 250, fields: { h: '#host' } }, sinkCtx(config, repo, c));
      const pts = Array.from({ length: 30 }, (_v, i) => ({ host: `host-number-${String(i).padStart(3, '0')}` }));
      let from = 0;
      let acked = 0;
      for (const cut of [...cuts, pts.length]) {
        const r = await sink.deliver(batchOf(from, pts.slice(from, cut), T0), never);
        assert.ok(r.ackedThrough >= acked && r.ackedThrough <= cut);
        acked = r.ackedThrough;
        from = cut;
      }
      const files = bucketFiles(config, bucket);
      let total = 0;
      for (const f of files) {
        const text = readObject(config, bucket, f);
        assert.ok(Buffer.byteLength(text) >= 250 && Buffer.byteLength(text) < 250 + 30, `${f} is ${Buffer.byteLength(text)} bytes`);
        total += text.split('\n').length - 1;
      }
      assert.equal(total, acked, 'closed files hold exactly the acked records');
      await sink.close();
      return files.map((f) => f.replace(/_[0-9a-f]{8}_/, '_'));
    };
    const whole = await run([]);
    // Each line is 24 bytes: a file closes with the record that takes it to 250 bytes or more.
    assert.deepEqual(whole, ['p/2017-01-12-07-30-00_0-10.json', 'p/2017-01-12-07-30-00_11-21.json']);
    assert.deepEqual(await run([3, 4, 11, 12, 19, 25]), whole);
  });

  it('puts one record in each file when rotateSize is smaller than a record, csv header included', async () => {
    const bucket = freshBucket();
    const sink = await kodoSink({ bucket, format: 'csv', delimiter: ',', rotateStrategy: 'size', rotateSize: 1, fields: { h: '#host' } }, sinkCtx(config, repoRow('tiny'), clock(T0)));
    const r = await sink.deliver(batchOf(0, [point(1), point(2), point(3)], T0), never);
    assert.equal(r.ackedThrough, 3);
    const files = bucketFiles(config, bucket);
    assert.deepEqual(files.map((f) => f.replace(/^.*_(\d+-\d+)\.csv$/, '$1')), ['0-0', '1-1', '2-2']);
    assert.deepEqual(files.map((f) => readObject(config, bucket, f)), ['h\nh1\n', 'h\nh2\n', 'h\nh3\n']);
    await sink.close();
  });

  it('closes by interval with the injected clock, and a size file still closes after 10 minutes', async () => {
    const bucket = freshBucket();
    const repo = repoRow('both');
    const c = clock(T0);
    const sink = await kodoSink({ bucket, rotateStrategy: 'size', rotateSize: 1_000_000 }, sinkCtx(config, repo, c));
    await sink.deliver(batchOf(0, [point(1)], T0), never);
    c.t += 599_000;
    assert.equal(await sink.tick!(never), 0);
    c.t += 1_000;
    assert.equal(await sink.tick!(never), 1);
    // rotateInterval is checked before a batch too: the open file closes and the batch starts the next.
    const both = await kodoSink({ bucket, keyPrefix: 'b/', rotateStrategy: 'both', rotateInterval: 45, rotateSize: 1_000_000 }, sinkCtx(config, repo, c, 'both'));
    await both.deliver(batchOf(0, [point(1)], c.t), never);
    c.t += 45_000;
    const r = await both.deliver(batchOf(1, [point(2)], c.t), never);
    assert.equal(r.ackedThrough, 1);
    assert.equal(bucketFiles(config, bucket).filter((k) => k.startsWith('b/')).length, 1);
    await sink.close();
    await both.close();
  });

  it('evaluates keyPrefix magic variables in the configured time zone at the first record\'s append time, with no timestamp added', async () => {
    const { config: shanghai, dir: d2 } = testConfig({ timezone: 'Asia/Shanghai' });
    const bucket = freshBucket();
    const repo = repoRow('magic');
    const c = clock(T0 + 3_600_000); // the wall clock differs from the append time: the key follows the append time
    const sink = await kodoSink({ bucket, keyPrefix: 'kodo-parquet/date=$(year)-$(mon)-$(day)/hour=$(hour)/min=$(min)/$(sec)' }, sinkCtx(shanghai, repo, c));
    await sink.deliver(batchOf(40, [point(1)], T0), never);
    c.t += 30_000;
    await sink.tick!(never);
    assert.deepEqual(bucketFiles(shanghai, bucket), [`kodo-parquet/date=2017-01-12/hour=15/min=30/00_${exportTag('alice', repo, 'e1')}_40-40.json`]);
    await sink.close();
    rmSync(d2, { recursive: true, force: true });
  });

  it('rewrites the same object when a new sink redelivers offsets a crashed one published but never committed', async () => {
    const bucket = freshBucket();
    const repo = repoRow('redeliver');
    const c = clock(T0);
    const pts = Array.from({ length: 7 }, (_v, i) => point(i));
    const first = await kodoSink({ bucket, keyPrefix: 'r/' }, sinkCtx(config, repo, c));
    await first.deliver(batchOf(100, pts.slice(0, 5), T0), never);
    c.t += 30_000;
    assert.equal(await first.tick!(never), 105);
    const published = bucketFiles(config, bucket);
    const before = readObject(config, bucket, published[0] as string);
    // Crash: the ack 105 was never committed, so the engine re-reads from 100 with a new sink; more data arrived meanwhile.
    const second = await kodoSink({ bucket, keyPrefix: 'r/' }, sinkCtx(config, repo, c));
    const r = await second.deliver(batchOf(100, pts, [T0, T0, T0, T0, T0, c.t, c.t]), never);
    assert.equal(r.ackedThrough, 105, 'the redelivered file closes where the published one ended');
    c.t += 30_000;
    assert.equal(await second.tick!(never), 107);
    const files = bucketFiles(config, bucket);
    assert.equal(files.length, 2);
    assert.equal(files[0], published[0]);
    assert.match(files[1] as string, /_105-106\.json$/);
    assert.equal(readObject(config, bucket, files[0] as string), before);
    await first.close();
    await second.close();
  });

  it('never shows a partial object: the file grows in the spool outside the bucket and appears whole', async () => {
    const bucket = freshBucket();
    const repo = repoRow('atomic');
    const c = clock(T0);
    const sink = await kodoSink({ bucket, format: 'csv', delimiter: ',' }, sinkCtx(config, repo, c));
    for (let b = 0; b < 20; b++) {
      await sink.deliver(batchOf(b * 100, Array.from({ length: 100 }, (_v, i) => point(b * 100 + i)), T0), never);
      assert.deepEqual(bucketFiles(config, bucket), [], 'nothing in the bucket, not even a temp file, while the file is open');
    }
    c.t += 30_000;
    assert.equal(await sink.tick!(never), 2000);
    const files = bucketFiles(config, bucket);
    assert.equal(files.length, 1);
    assert.equal(readObject(config, bucket, files[0] as string).split('\n').length, 2002);
    await sink.close();
  });

  it('retention deletes this export\'s files older than the given days and leaves other exports\' files', async () => {
    const bucket = freshBucket();
    const repo = repoRow('ret');
    const c = clock(Date.now());
    const mine = await kodoSink({ bucket, keyPrefix: 'same/', retention: 7 }, sinkCtx(config, repo, c, 'mine'));
    const other = await kodoSink({ bucket, keyPrefix: 'same/' }, sinkCtx(config, repo, c, 'other'));
    await mine.deliver(batchOf(0, [point(1)], c.t), never);
    await other.deliver(batchOf(0, [point(1)], c.t), never);
    c.t += 30_000;
    await mine.tick!(never);
    await other.tick!(never);
    assert.equal(bucketFiles(config, bucket).length, 2, 'both exports published; different tags keep their keys apart');
    c.t += 6 * 86_400_000;
    await mine.tick!(never);
    assert.equal(bucketFiles(config, bucket).length, 2, 'not yet 7 days old');
    c.t += 2 * 86_400_000;
    await mine.tick!(never);
    const left = bucketFiles(config, bucket);
    assert.equal(left.length, 1);
    assert.ok(left[0]?.includes(exportTag('alice', repo, 'other')));
    await mine.close();
    await other.close();
  });
});

describe('kodo sink: failures', () => {
  it('keeps a finished file whose publish failed and publishes it on the next attempt, acking only then', async () => {
    const bucket = freshBucket();
    const repo = repoRow('blocked');
    const c = clock(T0);
    const sink = await kodoSink({ bucket, keyPrefix: 'blocked/', format: 'json' }, sinkCtx(config, repo, c));
    const { mkdirSync, writeFileSync, rmSync: rm } = await import('node:fs');
    mkdirSync(`${config.bucketsDir}/${bucket}`, { recursive: true });
    writeFileSync(`${config.bucketsDir}/${bucket}/blocked`, 'a file where the folder should be');
    await sink.deliver(batchOf(0, [point(1), point(2)], T0), never);
    c.t += 30_000;
    await assert.rejects(sink.tick!(never), (err: unknown) => err instanceof RetryableSinkError && /publishing blocked\/.*_0-1\.json in bucket .* failed: "blocked" inside the bucket is a file/.test(err.message));
    // The engine retries the batch it failed on: nothing is taken twice, nothing is acked yet.
    await assert.rejects(sink.deliver(batchOf(2, [point(3)], T0), never), RetryableSinkError);
    rm(`${config.bucketsDir}/${bucket}/blocked`);
    const r = await sink.deliver(batchOf(2, [point(3)], T0), never);
    assert.equal(r.ackedThrough, 2, 'the first file is published now');
    c.t += 30_000;
    assert.equal(await sink.tick!(never), 3);
    const files = bucketFiles(config, bucket);
    assert.deepEqual(files.map((f) => f.replace(/_[0-9a-f]{8}_/, '_')), ['blocked/2017-01-12-07-30-00_0-1.json', 'blocked/2017-01-12-07-30-00_2-2.json']);
    assert.deepEqual(files.flatMap((f) => readObject(config, bucket, f).trim().split('\n').map((l) => JSON.parse(l).host)), ['h1', 'h2', 'h3']);
    await sink.close();
  });
});

describe('kodo sink: spool', () => {
  it('removes files a crashed run left in the spool folder when the process opens its first file', async () => {
    const { config: fresh, dir: d3 } = testConfig();
    const { mkdirSync, writeFileSync, readdirSync } = await import('node:fs');
    const { spoolDir } = await import('../src/exports/kodo/sink.ts');
    mkdirSync(spoolDir(fresh), { recursive: true });
    writeFileSync(`${spoolDir(fresh)}/0a1b2c3d-deadbeef0000.json`, '{"stale":true}');
    const c = clock(T0);
    const sink = await kodoSink({ bucket: freshBucket() }, sinkCtx(fresh, repoRow('spool'), c));
    await sink.deliver(batchOf(0, [point(1)], T0), never);
    assert.ok(!readdirSync(spoolDir(fresh)).includes('0a1b2c3d-deadbeef0000.json'));
    await sink.close();
    assert.deepEqual(readdirSync(spoolDir(fresh)), [], 'close removes the open file\'s spool');
    rmSync(d3, { recursive: true, force: true });
  });
});

describe('kodo sink: preview', () => {
  it('renders the object key and the first lines without writing anything', async () => {
    const bucket = freshBucket();
    const repo = repoRow('preview');
    const c = clock(T0);
    const sink = await kodoSink({ bucket, keyPrefix: 'pv/', format: 'csv', delimiter: ',', fields: { h: '#host', l: '#latency' } }, sinkCtx(config, repo, c));
    const p = await sink.preview(batchOf(3, Array.from({ length: 12 }, (_v, i) => point(i)), T0));
    assert.equal(p.rendered.key, `pv/2017-01-12-07-30-00_${exportTag('alice', repo, 'e1')}_3-14.csv`);
    assert.deepEqual((p.rendered.lines as string[]).slice(0, 3), ['h,l', 'h0,0', 'h1,10']);
    assert.equal((p.rendered.lines as string[]).length, 11, 'header and the first 10 records');
    assert.deepEqual(p.rejected, []);
    const pq = await kodoSink({ bucket, format: 'parquet', fields: { h: '#host', r: '#req' } }, sinkCtx(config, repo, c, 'pq'));
    const pp = await pq.preview(batchOf(0, [point(1)], T0));
    assert.deepEqual(pp.rendered.columns, [{ name: 'h', type: 'VARCHAR' }, { name: 'r', type: 'STRUCT("path" VARCHAR, "status" BIGINT)' }]);
    assert.deepEqual(pp.rendered.lines, ['{"h":"h1","r":{"path":"/p/1","status":201}}']);
    assert.deepEqual(bucketFiles(config, bucket), []);
    await sink.close();
    await pq.close();
  });
});

describe('kodo sink: bad specs and grants', () => {
  const repo = repoRow('specs');
  const check = async (spec: Record<string, unknown>, code: string, message: RegExp, account = 'alice'): Promise<void> => {
    const { KODO } = await import('../src/exports/kodo/index.ts');
    await assert.rejects(KODO.validate(spec, { account, repo, config }), (err: unknown) => {
      assert.ok(err instanceof ApiError, String(err));
      assert.equal(err.code, code, err.message);
      assert.match(err.message, message);
      return true;
    }, JSON.stringify(spec));
  };

  it('refuses bad formats, csv without delimiter, bad rotate values, keyPrefixes and bucket names with E18303 naming the field', async () => {
    await check({}, 'E18303', /bucket is required/);
    await check({ bucket: 'b-1', format: 'xml' }, 'E18303', /format must be one of json, text, csv, parquet, got "xml"/);
    await check({ bucket: 'b-1', format: 'csv' }, 'E18303', /format csv needs a delimiter/);
    await check({ bucket: 'b-1', format: 'csv', delimiter: '"' }, 'E18303', /delimiter must be/);
    await check({ bucket: 'b-1', rotateInterval: 29 }, 'E18303', /rotateInterval must be between 30 and 600 seconds, got 29/);
    await check({ bucket: 'b-1', rotateInterval: 601 }, 'E18303', /rotateInterval must be between 30 and 600/);
    await check({ bucket: 'b-1', rotateInterval: 'soon' }, 'E18303', /rotateInterval must be an integer/);
    await check({ bucket: 'b-1', rotateSize: 0 }, 'E18303', /rotateSize must be between 1 and 1073741824 bytes, got 0/);
    await check({ bucket: 'b-1', rotateSize: 2 ** 31 }, 'E18303', /rotateSize must be between/);
    await check({ bucket: 'b-1', rotateStrategy: 'daily' }, 'E18303', /rotateStrategy must be one of interval, size, both/);
    await check({ bucket: 'b-1', compress: 'yes' }, 'E18303', /compress must be true or false/);
    await check({ bucket: 'b-1', keyPrefix: '../escape/' }, 'E18303', /keyPrefix "..\/escape\/" does not make valid object keys/);
    await check({ bucket: 'b-1', keyPrefix: '/abs/' }, 'E18303', /does not make valid object keys/);
    await check({ bucket: 'b-1', keyPrefix: 'x/$(week)/' }, 'E18303', /keyPrefix uses \$\(week\), which is not a magic variable/);
    await check({ bucket: 'b-1', fields: { 'bad col': '#host' } }, 'E18303', /output column "bad col"/);
    await check({ bucket: 'b-1', fields: { h: 5 } }, 'E18303', /fields.h must be a "#field" reference/);
    await check({ bucket: '../etc' }, 'E18303', /not a valid bucket name/);
  });

  it('refuses a #field the repo does not have with E18303 naming it', async () => {
    await check({ bucket: 'b-1', fields: { h: '#nope' } }, 'E18303', /fields.h refers to "#nope", which is not a field of the repo/);
    await check({ bucket: 'b-1', fields: { h: '#req.nope' } }, 'E18303', /"#req.nope"/);
  });

  it('refuses a bucket outside the account\'s grants with E18323, at validation and again at delivery', async () => {
    await check({ bucket: 'alice-logs' }, 'E18323', /not one of the buckets this account may use \(bob-logs\)/, 'bob');
    const { KODO } = await import('../src/exports/kodo/index.ts');
    // A grant withdrawn after creation (config changed, server restarted): delivery is refused and retried, not dropped.
    const sink = KODO.create({ bucket: 'alice-logs' }, sinkCtx(config, repo, clock(T0), 'e1', 'bob'));
    await assert.rejects(sink.deliver(batchOf(0, [point(1)], T0), never), (err: unknown) => err instanceof RetryableSinkError && /not one of the buckets/.test(err.message));
    await sink.close();
  });

  it('accepts the SDK\'s extra fields and stores the spec as sent', async () => {
    const { KODO } = await import('../src/exports/kodo/index.ts');
    const spec = { bucket: 'b-2', keyPrefix: 'logkitauto/date=$(year)-$(mon)-$(day)/hour=$(hour)/min=$(min)/$(sec)', email: 'a@b.c', accessKey: 'AK', format: 'parquet', rotateStrategy: 'both', rotateSize: 5242880, rotateInterval: 600, rotateSizeType: 'KB', rotateNumber: 5120, kodo_file_type: 0, exportZone: 'z0' };
    assert.deepEqual(await KODO.validate(spec, { account: 'alice', repo, config }), spec);
  });
});
