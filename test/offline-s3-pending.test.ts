/**
 * Recovery of S3 job-export publishes from their journal (src/offline/s3pending.ts)
 * on the s3rver emulator, for the states a kill -9 can leave that the
 * end-to-end crash test (offline-s3-crash.test.ts) does not reach: cut off
 * after the manifest, and a `_PENDING` written by someone else.
 */
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { objectStoreFor, type ObjectStore } from '../src/objectstore/index.ts';
import { S3PendingJournal, type PendingPublish } from '../src/offline/s3pending.ts';
import { startS3Emulator, testConfig, type S3Emulator } from './buckets-helpers.ts';
import type { Config } from '../src/config.ts';

describe('S3 publish journal recovery', () => {
  let s3: S3Emulator;
  let config: Config;
  let dir: string;
  let store: ObjectStore;
  before(async () => {
    s3 = await startS3Emulator(['jr-out']);
    ({ config, dir } = testConfig({ s3Endpoint: s3.endpoint, s3AccessKey: 'S3RVER', s3SecretKey: 'S3RVER' }));
    store = objectStoreFor(config);
  });
  after(async () => {
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const publish = (folder: string, tag: string, saveMode: string, bucket = 'jr-out'): PendingPublish => ({ bucket, folder, tag, saveMode, account: 'alice', job: 'j', export: 'e', runId: Number(/run(\d+)/.exec(tag)?.[1]) });
  async function keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const o of store.list('jr-out', prefix)) out.push(o.key.slice(prefix.length));
    return out.sort();
  }
  /** The objects a publish of `tag` cut off after its manifest leaves: old output unlisted, new listed, _PENDING its own. */
  async function cutAfterManifest(folder: string, tag: string, old: string[], fresh: string[], keep: string[]): Promise<void> {
    for (const k of [...old, ...fresh]) await store.put('jr-out', folder + k, 'x');
    await store.put('jr-out', folder + '_SUCCESS', JSON.stringify({ runId: 2, tag, keys: [...keep, ...fresh] }));
    await store.put('jr-out', folder + '_PENDING', JSON.stringify({ runId: 2, tag }));
  }

  it('finishes a publish cut off after its manifest: overwrite deletes the previous output, append keeps it; only its own _PENDING goes', async () => {
    const j = new S3PendingJournal(config);
    await cutAfterManifest('ow/', 'run2-aaaaaa', ['run1-bbbbbb-part-00000.json', 'x=1/run1-bbbbbb-part-00000.json'], ['run2-aaaaaa-part-00000.json'], []);
    await cutAfterManifest('ap/', 'run2-cccccc', ['run1-dddddd-part-00000.json'], ['run2-cccccc-part-00000.json'], ['run1-dddddd-part-00000.json']);
    await store.put('jr-out', 'ap/run2-cccccc-part-00001.json', 'uploaded, not in the manifest');
    // Someone else's publish in progress in a third folder: not in this journal, left alone.
    await store.put('jr-out', 'other/_PENDING', JSON.stringify({ runId: 9, tag: 'run9-eeeeee' }));
    await store.put('jr-out', 'other/run9-eeeeee-part-00000.json', 'x');
    await j.begin(publish('ow/', 'run2-aaaaaa', 'overwrite'));
    await j.begin(publish('ap/', 'run2-cccccc', 'append'));
    await j.begin(publish('gone/', 'run3-ffffff', 'overwrite', 'jr-gone'));

    // A new process (the old one's publishes are not live in it) recovers at start.
    const after = new S3PendingJournal(config);
    await after.recoverAll();
    assert.deepEqual(await keys('ow/'), ['_SUCCESS', 'run2-aaaaaa-part-00000.json']);
    assert.deepEqual(await keys('ap/'), ['_SUCCESS', 'run1-dddddd-part-00000.json', 'run2-cccccc-part-00000.json']);
    assert.deepEqual(await keys('other/'), ['_PENDING', 'run9-eeeeee-part-00000.json']);
    assert.deepEqual(readdirSync(after.dir), [], 'every entry done: the bucket of the third is gone, and its leftovers with it');
  });

  it('never recovers a publish that is live in this process, and leaves another attempt\'s _PENDING in place', async () => {
    const j = new S3PendingJournal(config);
    await store.put('jr-out', 'live/_PENDING', JSON.stringify({ runId: 4, tag: 'run4-111111' }));
    await store.put('jr-out', 'live/run4-111111-part-00000.json', 'x');
    const e = await j.begin(publish('live/', 'run4-111111', 'overwrite'));
    await j.recoverAll();
    await j.settle('jr-out', 'live/');
    assert.deepEqual(await keys('live/'), ['_PENDING', 'run4-111111-part-00000.json'], 'a live publish is untouched');
    j.release(e); // as after an upload failure whose own clean-up failed
    await store.put('jr-out', 'live/_PENDING', JSON.stringify({ runId: 5, tag: 'run5-222222' })); // a later attempt's marker
    await j.settle('jr-out', 'live/');
    assert.deepEqual(await keys('live/'), ['_PENDING'], 'its orphan goes, the later attempt\'s _PENDING stays');
    assert.deepEqual(readdirSync(j.dir), []);
  });
});
