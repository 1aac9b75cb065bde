/**
 * The repo log's large frames, written on the thread pool so they do not hold
 * the event loop: appends keep their arrival order, offsets stay contiguous,
 * everything reads back (also after reopening), close waits for queued
 * appends, and the log's time range feeds the repo stats.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createLogStore, type AppendResult } from '../src/storage/log/index.ts';
import { ASYNC_WRITE_BYTES } from '../src/storage/log/segmented.ts';
import { tmpDir } from './helpers.ts';

function store(dir: string, segmentBytes = 64 * 1024 * 1024) {
  return createLogStore({ dir, fsync: { mode: 'always' }, segmentBytes, retentionMs: 0, retentionBytes: 0 });
}

/** `count` lines of about `bytes` in total, tagged with the append number. */
function payload(tag: number, count: number, bytes: number): { lines: string[]; buf: Buffer } {
  const width = Math.max(1, Math.floor(bytes / count) - 12);
  const lines = Array.from({ length: count }, (_, i) => `a=${tag}_${i}_${'x'.repeat(width)}`);
  return { lines, buf: Buffer.from(lines.join('\n')) };
}

describe('repo log: large frames', () => {
  for (const segmentMb of [64, 5]) it(`keeps arrival order and contiguous offsets when large and small appends interleave, and reads all back after reopening (${segmentMb} MB segments)`, async () => {
    const dir = tmpDir();
    try {
      const s = store(dir, segmentMb * 1024 * 1024);
      const log = await s.open('acct/repo');
      const sizes = [ASYNC_WRITE_BYTES + 1000, 100, 200, ASYNC_WRITE_BYTES * 2, 50, ASYNC_WRITE_BYTES, 10, 5000];
      const parts = sizes.map((b, i) => payload(i, b > 1000 ? 500 : 3, b));
      const results = await Promise.all(parts.map((p) => log.appendPayload(p.buf, p.lines.length)));
      let next = 0;
      results.forEach((r, i) => {
        assert.equal(r.baseOffset, next, `append ${i}`);
        next = r.endOffset;
      });
      const expected = parts.flatMap((p) => p.lines);
      const read = await log.read(0, expected.length);
      assert.deepEqual(read.lines, expected);
      assert.ok(log.timeRange()!.newest >= log.timeRange()!.oldest);
      await s.close();
      const again = store(dir, segmentMb * 1024 * 1024);
      const reopened = await again.open('acct/repo');
      assert.equal(reopened.endOffset(), expected.length);
      assert.deepEqual((await reopened.read(0, expected.length)).lines, expected);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes a large frame off the event loop (nothing written in the calling tick), and close waits for queued appends', async () => {
    const dir = tmpDir();
    try {
      const s = store(dir);
      const log = await s.open('acct/big');
      const big = payload(1, 2000, 48 * 1024 * 1024);
      const pending = [log.appendPayload(big.buf, 2000), log.appendPayload(Buffer.from('a=tail'), 1)];
      // A synchronous write would have grown the log already; the thread pool has not run yet.
      assert.equal(log.sizeBytes(), 0);
      const closing = s.close();
      const [r1, r2] = (await Promise.all(pending)) as [AppendResult, AppendResult];
      await closing;
      assert.equal(r1.endOffset, 2000);
      assert.equal(r2.baseOffset, 2000);
      const again = store(dir);
      const reopened = await again.open('acct/big');
      assert.equal(reopened.endOffset(), 2001);
      assert.deepEqual((await reopened.read(2000, 1)).lines, ['a=tail']);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
