import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { createLogStore } from '../src/storage/log/index.ts';
import { CRASH_KEY, CRASH_SEGMENT_BYTES, crashLine } from './fixtures/log-crash-child.ts';

const CHILD = fileURLToPath(new URL('./fixtures/log-crash-child.ts', import.meta.url));
const ROUNDS = 8;

interface Ack {
  base: number;
  end: number;
  batch: number;
  count: number;
}

/** Runs the child for one round, SIGKILLs it after a random number of acks, returns every ack it printed. */
function crashRound(dir: string, round: number): Promise<Ack[]> {
  const killAfter = 5 + Math.floor(Math.random() * 60);
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(round)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let acks = 0;
  let killing = false;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    acks += chunk.split('\n').length - 1;
    if (acks >= killAfter && !killing) {
      killing = true;
      setTimeout(() => child.kill('SIGKILL'), Math.random() * 10);
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`child exited with ${code} before being killed`));
      // Only whole lines are acknowledgements; a cut-off last line is not.
      const acked = out.split('\n').slice(0, -1).map((l) => {
        const [word, base, end, batch, count] = l.split(' ');
        assert.equal(word, 'ack');
        return { base: Number(base), end: Number(end), batch: Number(batch), count: Number(count) };
      });
      resolve(acked);
    });
  });
}

test('after repeated SIGKILLs every acknowledged append is readable intact and no torn line exists', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'log-crash-'));
  try {
    const acked = new Map<number, Ack[]>();
    for (let round = 1; round <= ROUNDS; round++) {
      const acks = await crashRound(dir, round);
      assert.ok(acks.length >= 5, 'the child acknowledged appends before being killed');
      acked.set(round, acks);

      const store = createLogStore({ dir, fsync: { mode: 'always' }, segmentBytes: CRASH_SEGMENT_BYTES, retentionMs: 0, retentionBytes: 0 });
      const log = await store.open(CRASH_KEY);
      const all = await log.read(0, Number.MAX_SAFE_INTEGER);
      assert.equal(all.from, 0);
      assert.equal(all.next, log.endOffset());

      // Every acknowledged append of every round so far is there, with the exact content.
      for (const [r, list] of acked) {
        for (const ack of list) {
          assert.equal(ack.end - ack.base, ack.count);
          for (let i = 0; i < ack.count; i++) {
            assert.equal(all.lines[ack.base + i], crashLine(r, ack.batch, i, ack.count), `round ${r} offset ${ack.base + i}`);
          }
        }
      }

      // The whole log is a sequence of complete batches: no torn or partial append.
      let offset = 0;
      while (offset < all.lines.length) {
        const m = /^r=(\d+)\tb=(\d+)\ti=0\tn=(\d+)\t/.exec(all.lines[offset]!);
        assert.ok(m, `offset ${offset} starts a batch: ${all.lines[offset]}`);
        const [r, b, n] = [Number(m[1]), Number(m[2]), Number(m[3])];
        for (let i = 0; i < n; i++) {
          assert.equal(all.lines[offset + i], crashLine(r, b, i, n), `batch line at ${offset + i}`);
        }
        offset += n;
      }
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
