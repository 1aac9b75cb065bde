import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError } from '../src/errors.ts';
import { checkBucket, InvalidObjectKeyError, NoSuchKeyError, objectStoreFor, type ObjectStore } from '../src/objectstore/index.ts';
import { LocalObjectStore } from '../src/objectstore/local.ts';
import { S3ObjectStore } from '../src/objectstore/s3.ts';
import { startS3Emulator, tempDir, testConfig, type S3Emulator } from './buckets-helpers.ts';

async function keys(store: ObjectStore, bucket: string, prefix?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(bucket, prefix)) out.push(o.key);
  return out;
}

/** The contract both stores pass. */
function contract(name: string, make: () => { store: ObjectStore; bucket: string }): void {
  describe(`${name}: object store contract`, () => {
    it('reads back what was put, as a stream, with its size listed', async () => {
      const { store, bucket } = make();
      await store.put(bucket, 'a/b/c.json', '{"x":1}\n');
      assert.equal(await text(await store.get(bucket, 'a/b/c.json')), '{"x":1}\n');
      const listed = [];
      for await (const o of store.list(bucket, 'a/')) listed.push(o);
      assert.equal(listed.length, 1);
      assert.equal(listed[0]?.key, 'a/b/c.json');
      assert.equal(listed[0]?.size, 8);
      assert.ok((listed[0]?.modified ?? 0) > Date.now() - 60_000);
    });

    it('lists exactly the keys starting with a prefix, also a prefix ending inside a name', async () => {
      const { store, bucket } = make();
      for (const k of ['p/a/b', 'p/a-c', 'p/a.x', 'p/b', 'q/z', 'p/ab']) await store.put(bucket, k, k);
      // Sorted here: the s3rver emulator lists folders first, real S3 and the local store in byte order.
      assert.deepEqual((await keys(store, bucket, 'p/')).sort(), ['p/a-c', 'p/a.x', 'p/a/b', 'p/ab', 'p/b']);
      assert.deepEqual((await keys(store, bucket, 'p/a')).sort(), ['p/a-c', 'p/a.x', 'p/a/b', 'p/ab']);
      assert.deepEqual(await keys(store, bucket, 'p/a/'), ['p/a/b']);
      assert.deepEqual(await keys(store, bucket, 'nothing/'), []);
    });

    it('replaces an object on a second put and deletes, ignoring absent keys', async () => {
      const { store, bucket } = make();
      await store.put(bucket, 'k/one', 'first');
      await store.put(bucket, 'k/one', 'second');
      assert.equal(await text(await store.get(bucket, 'k/one')), 'second');
      await store.delete(bucket, ['k/one', 'k/never']);
      assert.deepEqual(await keys(store, bucket, 'k/'), []);
      await assert.rejects(store.get(bucket, 'k/one'), NoSuchKeyError);
    });

    it('uploads a local file, also one larger than a multipart part', async () => {
      const { store, bucket } = make();
      const dir = tempDir();
      const file = path.join(dir, 'big.bin');
      const big = Buffer.alloc(17 * 1024 * 1024, 7);
      big.write('head', 0);
      writeFileSync(file, big);
      await store.putFile(bucket, 'files/big.bin', file);
      const back = Buffer.concat(await (await store.get(bucket, 'files/big.bin')).toArray());
      assert.equal(back.length, big.length);
      assert.ok(back.equals(big));
      rmSync(dir, { recursive: true, force: true });
    });

    it('refuses keys that could escape the bucket or name no object', async () => {
      const { store, bucket } = make();
      for (const bad of ['../x', 'a/../../x', '/abs', 'a//b', 'a/./b', 'dir/', 'back\\slash', 'nul\u0000', '.pipeline-tmp-x', '']) {
        await assert.rejects(store.put(bucket, bad, 'x'), InvalidObjectKeyError, JSON.stringify(bad));
      }
      await assert.rejects(store.put('../etc', 'x', 'x'), InvalidObjectKeyError);
    });
  });
}

describe('local bucket store', () => {
  const root = tempDir();
  after(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;
  contract('local folders', () => ({ store: new LocalObjectStore(root), bucket: `bucket-${++n}` }));

  it('lists keys in their byte order, as S3 does ("a-c" before "a/b")', async () => {
    const store = new LocalObjectStore(root);
    for (const k of ['p/a/b', 'p/a-c', 'p/a.x', 'p/b', 'p/ab']) await store.put('ordered', k, k);
    assert.deepEqual(await keys(store, 'ordered', 'p/'), ['p/a-c', 'p/a.x', 'p/a/b', 'p/ab', 'p/b']);
  });

  it('keeps objects in <bucketsDir>/<bucket>/<key> and leaves no temp file behind', async () => {
    const store = new LocalObjectStore(root);
    await store.put('plain-files', 'logs/2017/x.json', 'abc');
    assert.deepEqual(readdirSync(path.join(root, 'plain-files', 'logs', '2017')), ['x.json']);
  });

  it('never shows a file being written: temp names are not listed', async () => {
    const store = new LocalObjectStore(root);
    await store.put('temp-skip', 'd/done.json', 'x');
    writeFileSync(path.join(root, 'temp-skip', 'd', '.pipeline-tmp-abc123'), 'partial');
    assert.deepEqual(await keys(store, 'temp-skip'), ['d/done.json']);
  });

  it('does not follow a symlink inside a bucket, for writes, reads or listing', async () => {
    const store = new LocalObjectStore(root);
    const outside = tempDir();
    writeFileSync(path.join(outside, 'secret'), 'secret');
    mkdirSync(path.join(root, 'links'), { recursive: true });
    symlinkSync(outside, path.join(root, 'links', 'out'));
    symlinkSync(path.join(outside, 'secret'), path.join(root, 'links', 'file'));
    await assert.rejects(store.put('links', 'out/planted', 'x'), InvalidObjectKeyError);
    await assert.rejects(store.get('links', 'out/secret'), NoSuchKeyError);
    await assert.rejects(store.get('links', 'file'), NoSuchKeyError);
    assert.deepEqual(await keys(store, 'links'), []);
    assert.deepEqual(readdirSync(outside), ['secret']);
    rmSync(outside, { recursive: true, force: true });
  });

  it('moves a file into place when asked, and gives it back when the publish fails', async () => {
    const store = new LocalObjectStore(root);
    const dir = tempDir();
    const file = path.join(dir, 'spool.json');
    writeFileSync(file, 'moved');
    await store.put('moves', 'taken/inner', 'x');
    await assert.rejects(store.putFile('moves', 'taken', file, { move: true }), /names a folder/);
    assert.deepEqual(readdirSync(dir), ['spool.json'], 'the file is back after the failed publish');
    assert.deepEqual(readdirSync(path.join(root, 'moves')), ['taken'], 'no temp file left');
    await store.putFile('moves', 'a/moved.json', file, { move: true });
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(await text(await store.get('moves', 'a/moved.json')), 'moved');
    rmSync(dir, { recursive: true, force: true });
  });

  it('removes folders a delete leaves empty, up to the bucket', async () => {
    const store = new LocalObjectStore(root);
    await store.put('tidy', 'date=2017-01-12/hour=15/a.json', 'x');
    await store.delete('tidy', ['date=2017-01-12/hour=15/a.json']);
    assert.deepEqual(readdirSync(path.join(root, 'tidy')), []);
  });
});

describe('bucket grants', () => {
  it('lets an account without a list use any bucket, and refuses a bucket outside an account\'s list with E18323', async () => {
    const { config, dir } = testConfig();
    await checkBucket(config, 'alice', 'any-bucket');
    await checkBucket(config, 'bob', 'bob-logs');
    await assert.rejects(checkBucket(config, 'bob', 'alice-logs'), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.code, 'E18323');
      assert.equal(err.status, 404);
      assert.match(err.message, /bucket "alice-logs" is not one of the buckets this account may use \(bob-logs\)/);
      return true;
    });
    await assert.rejects(checkBucket(config, 'alice', 'a'), (err: unknown) => err instanceof ApiError && err.code === 'E18305' && /not a valid bucket name/.test(err.message));
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('s3rver emulator: S3 bucket store', () => {
  let s3: S3Emulator;
  let store: S3ObjectStore;
  let n = 0;
  const buckets = Array.from({ length: 8 }, (_v, i) => `contract-${i + 1}`);
  before(async () => {
    s3 = await startS3Emulator([...buckets, 'granted']);
    store = new S3ObjectStore({ endpoint: s3.endpoint, accessKey: 'S3RVER', secretKey: 'S3RVER', region: 'us-east-1', pathStyle: true });
  });
  after(async () => {
    await store.close();
    await s3.close();
  });
  contract('s3rver emulator', () => ({ store, bucket: buckets[n++] as string }));

  it('checks at validation that the bucket exists on the endpoint (E18323 otherwise)', async () => {
    const { config, dir } = testConfig({ s3Endpoint: s3.endpoint, s3AccessKey: 'S3RVER', s3SecretKey: 'S3RVER' });
    assert.equal(objectStoreFor(config).kind, 's3');
    await checkBucket(config, 'alice', 'granted');
    await assert.rejects(checkBucket(config, 'alice', 'missing-bucket'), (err: unknown) => err instanceof ApiError && err.code === 'E18323' && /does not exist at the S3 endpoint/.test(err.message));
    await objectStoreFor(config).close();
    rmSync(dir, { recursive: true, force: true });
  });
});
