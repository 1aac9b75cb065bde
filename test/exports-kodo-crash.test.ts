/**
 * kill -9 between publishing a kodo file and committing its offsets: the
 * real server process dies right after the first file appears (failpoint
 * kodo-after-publish). After a restart the export re-reads from the
 * committed offset, rewrites that same object and goes on: every point is
 * in exactly one file, no object overlaps another, no temp file is left.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { tmpDir } from './helpers.ts';
import { waitFor } from './exports-helpers.ts';
import { spawnServer } from './spawn.ts';

describe('kodo export crash safety', () => {
  const dir = tmpDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rewrites the same object and loses or repeats nothing when the server is killed between publishing a file and committing it', async () => {
    const TOTAL = 2000;
    const PER_FILE = 250;
    // Ids 10000.. make every json line 13 bytes ({"id":10000} + newline): files close at exactly PER_FILE records.
    const spec = { bucket: 'crash', keyPrefix: 'out/', format: 'json', rotateStrategy: 'size', rotateSize: 13 * PER_FILE, fields: { id: '#id' } };
    const bucket = path.join(dir, 'buckets', 'crash', 'out');
    const a = spawnServer(dir, { PIPELINE_EXPORT_BATCH: '300', PIPELINE_FAILPOINT: 'kodo-after-publish' });
    try {
      await a.base;
      assert.equal((await a.call('POST', '/v2/repos/src', JSON.stringify({ region: 'nb', schema: [{ key: 'id', valtype: 'long' }] }))).status, 200);
      const body = Array.from({ length: TOTAL }, (_v, i) => `id=${10000 + i}`).join('\n');
      assert.equal((await a.call('POST', '/v2/repos/src/data', body, 'text/plain')).status, 200);
      assert.equal((await a.call('POST', '/v2/repos/src/exports/tokodo', JSON.stringify({ type: 'kodo', spec }))).status, 200);
      await a.exited;
    } finally {
      a.child.kill('SIGKILL');
    }
    assert.equal(a.child.signalCode, 'SIGKILL');
    const first = readdirSync(bucket);
    assert.equal(first.length, 1, 'the first file was published before the kill');
    assert.match(first[0] as string, /_0-249\.json$/);

    const b = spawnServer(dir, { PIPELINE_EXPORT_BATCH: '300' });
    try {
      await b.base;
      await waitFor(async () => JSON.parse((await b.call('GET', '/v2/repos/src/exports/tokodo')).body).status.lag.points === 0, 'the export to catch up', 30_000);
    } finally {
      b.child.kill('SIGTERM');
      await b.exited;
    }
    const files = readdirSync(bucket).sort((x, y) => Number(/_(\d+)-/.exec(x)?.[1]) - Number(/_(\d+)-/.exec(y)?.[1]));
    assert.equal(files.length, TOTAL / PER_FILE, files.join(', '));
    assert.equal(files[0], first[0], 'the redelivered file has the same key');
    const ids = files.flatMap((f) => readFileSync(path.join(bucket, f), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { id: number }).id));
    assert.deepEqual(ids, Array.from({ length: TOTAL }, (_v, i) => 10000 + i), 'every point exactly once, in order');
    files.forEach((f, i) => assert.match(f, new RegExp(`_${i * PER_FILE}-${(i + 1) * PER_FILE - 1}\\.json$`)));
  });
});
