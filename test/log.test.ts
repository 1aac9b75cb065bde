import assert from 'node:assert/strict';
import { appendFile, mkdtemp, open, readdir, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  InvalidLineError,
  InvalidLogKeyError,
  LogClosedError,
  LogCorruptError,
  createLogStore,
  type LogOptions,
  type LogStore,
  type RepoLog,
} from '../src/storage/log/index.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'log-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirs = 0;
function options(over: Partial<LogOptions> = {}): LogOptions {
  return {
    dir: join(root, `store-${dirs++}`),
    fsync: { mode: 'always' },
    segmentBytes: 1 << 20,
    retentionMs: 0,
    retentionBytes: 0,
    ...over,
  };
}

/** Deterministic wire-like line for offset-free content checks. */
function line(i: number): string {
  return `host=h${i % 7}\tseq=${i}\tmsg=hello\\tworld ${'é'.repeat(i % 3)}`;
}
function lines(from: number, n: number): string[] {
  return Array.from({ length: n }, (_, k) => line(from + k));
}

async function readAll(log: RepoLog, from = 0): Promise<string[]> {
  const out: string[] = [];
  let next = from;
  for (;;) {
    const r = await log.read(next, 7);
    if (r.lines.length === 0) return out;
    out.push(...r.lines);
    next = r.next;
  }
}

async function segmentFiles(opts: LogOptions, key: string): Promise<string[]> {
  return (await readdir(join(opts.dir, key))).filter((f) => f.endsWith('.log')).sort();
}

async function withLog(opts: LogOptions, fn: (log: RepoLog, store: LogStore) => Promise<void>): Promise<void> {
  const store = createLogStore(opts);
  try {
    await fn(await store.open('acct/repo'), store);
  } finally {
    await store.close();
  }
}

describe('repo log: appending and reading', () => {
  test('appends get contiguous offsets and read returns the same lines with their append times', async () => {
    await withLog(options(), async (log) => {
      const t0 = Date.now();
      assert.deepEqual(await log.append(lines(0, 3)), { baseOffset: 0, endOffset: 3 });
      assert.deepEqual(await log.append(lines(3, 2)), { baseOffset: 3, endOffset: 5 });
      const r = await log.read(0, 100);
      assert.deepEqual(r.lines, lines(0, 5));
      assert.equal(r.from, 0);
      assert.equal(r.next, 5);
      assert.equal(r.times.length, 5);
      assert.ok(r.times.every((t) => t >= t0 && t <= Date.now()));
      assert.equal(log.endOffset(), 5);
      assert.equal(log.startOffset(), 0);
      assert.ok(log.sizeBytes() > 0);
    });
  });

  test('offsets stay contiguous across segment rolls and reads span segments', async () => {
    const opts = options({ segmentBytes: 300 });
    await withLog(opts, async (log) => {
      let expected = 0;
      for (let i = 1; i <= 40; i++) {
        const r = await log.append(lines(expected, i % 5 + 1));
        assert.equal(r.baseOffset, expected);
        expected = r.endOffset;
      }
      assert.ok((await segmentFiles(opts, 'acct/repo')).length > 5, 'several segment files');
      assert.deepEqual(await readAll(log), lines(0, expected));
      const big = await log.read(0, expected);
      assert.deepEqual(big.lines, lines(0, expected));
    });
  });

  test('reading from the middle of a frame skips the earlier lines of that frame', async () => {
    await withLog(options(), async (log) => {
      await log.append(lines(0, 10));
      await log.append(lines(10, 10));
      const r = await log.read(4, 9);
      assert.deepEqual(r.lines, lines(4, 9));
      assert.equal(r.from, 4);
      assert.equal(r.next, 13);
      assert.deepEqual((await log.read(12, 3)).lines, lines(12, 3));
      assert.deepEqual((await log.read(19, 3)).lines, lines(19, 1));
    });
  });

  test('a reopened log returns the same data and end offset and continues appending', async () => {
    const opts = options({ segmentBytes: 200 });
    await withLog(opts, async (log) => {
      for (let i = 0; i < 10; i++) await log.append(lines(i * 3, 3));
    });
    await withLog(opts, async (log) => {
      assert.equal(log.endOffset(), 30);
      assert.deepEqual(await readAll(log), lines(0, 30));
      assert.deepEqual(await log.append(lines(30, 1)), { baseOffset: 30, endOffset: 31 });
    });
  });

  test('fifty concurrent appends resolve with distinct contiguous ranges that are all readable', async () => {
    await withLog(options({ segmentBytes: 2000 }), async (log) => {
      const batches = Array.from({ length: 50 }, (_, i) => [`batch=${i}\ta`, `batch=${i}\tb`, `batch=${i}\tc`]);
      const results = await Promise.all(batches.map((b) => log.append(b)));
      const sorted = [...results].sort((a, b) => a.baseOffset - b.baseOffset);
      sorted.forEach((r, i) => {
        assert.equal(r.baseOffset, i * 3);
        assert.equal(r.endOffset, i * 3 + 3);
      });
      for (const [i, r] of results.entries()) {
        assert.deepEqual((await log.read(r.baseOffset, 3)).lines, batches[i]);
      }
    });
  });

  test('reads at or beyond the end return no lines, and empty appends change nothing', async () => {
    await withLog(options(), async (log) => {
      assert.deepEqual(await log.read(0, 10), { from: 0, lines: [], times: [], next: 0 });
      await log.append(lines(0, 2));
      assert.deepEqual(await log.read(2, 10), { from: 2, lines: [], times: [], next: 2 });
      assert.deepEqual(await log.read(50, 10), { from: 50, lines: [], times: [], next: 50 });
      assert.deepEqual((await log.read(0, 0)).lines, []);
      assert.deepEqual(await log.append([]), { baseOffset: 2, endOffset: 2 });
      assert.deepEqual(await log.append(['']), { baseOffset: 2, endOffset: 3 });
      assert.deepEqual((await log.read(2, 5)).lines, ['']);
    });
  });

  test('lines containing a newline and unsafe keys are refused', async () => {
    await withLog(options(), async (log, store) => {
      await assert.rejects(log.append(['ok', 'bad\nline']), InvalidLineError);
      assert.equal(log.endOffset(), 0);
      for (const key of ['../x', '/abs', 'a/../b', 'a//b', 'a/b/c', '', '.', 'a\\b']) {
        await assert.rejects(store.open(key), InvalidLogKeyError, key);
      }
    });
  });

  test('an append is invisible to readers until its fsync finished', async () => {
    await withLog(options(), async (log) => {
      const pending = log.append(lines(0, 4));
      const early = log.read(0, 10);
      assert.equal(log.endOffset(), 0);
      await pending;
      assert.deepEqual((await early).lines, []);
      assert.equal(log.endOffset(), 4);
      assert.deepEqual((await log.read(0, 10)).lines, lines(0, 4));
    });
  });

  for (const fsync of [{ mode: 'interval', intervalMs: 5 }, { mode: 'never' }] as const) {
    test(`fsync policy '${fsync.mode}' acknowledges at once and keeps the data across a reopen`, async () => {
      const opts = options({ fsync, segmentBytes: 500 });
      await withLog(opts, async (log) => {
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(lines(i * 4, 4))));
        assert.equal(new Set(results.map((r) => r.baseOffset)).size, 20);
        assert.equal(log.endOffset(), 80);
        await new Promise((resolve) => setTimeout(resolve, 20));
      });
      await withLog(opts, async (log) => {
        assert.equal(log.endOffset(), 80);
        assert.equal((await readAll(log)).length, 80);
      });
    });
  }
});

describe('repo log: lifecycle', () => {
  test('the same key opens the same instance, and remove deletes the files', async () => {
    const opts = options();
    const store = createLogStore(opts);
    const [a, b] = await Promise.all([store.open('acct/repo'), store.open('acct/repo')]);
    assert.equal(a, b);
    await a.append(lines(0, 3));
    await store.remove('acct/repo');
    await assert.rejects(stat(join(opts.dir, 'acct/repo')), { code: 'ENOENT' });
    const fresh = await store.open('acct/repo');
    assert.notEqual(fresh, a);
    assert.equal(fresh.endOffset(), 0);
    await store.close();
  });

  test('close is idempotent and later appends, reads and opens are refused', async () => {
    const store = createLogStore(options());
    const log = await store.open('solo');
    await log.append(lines(0, 1));
    await Promise.all([store.close(), store.close()]);
    await store.close();
    await assert.rejects(log.append(lines(1, 1)), LogClosedError);
    await assert.rejects(log.read(0, 1), LogClosedError);
    await assert.rejects(store.open('solo'), LogClosedError);
  });
});

describe('repo log: crash recovery', () => {
  /** Writes 5 frames of 3 points, closes, then lets `damage` edit the last segment file. */
  async function damaged(damage: (file: string, size: number) => Promise<void>): Promise<LogOptions> {
    const opts = options();
    await withLog(opts, async (log) => {
      for (let i = 0; i < 5; i++) await log.append(lines(i * 3, 3));
    });
    const file = join(opts.dir, 'acct/repo', (await segmentFiles(opts, 'acct/repo')).at(-1)!);
    await damage(file, (await stat(file)).size);
    return opts;
  }

  async function assertRecovered(opts: LogOptions, points: number): Promise<void> {
    await withLog(opts, async (log) => {
      assert.equal(log.endOffset(), points);
      assert.deepEqual(await readAll(log), lines(0, points));
      assert.deepEqual(await log.append(lines(points, 2)), { baseOffset: points, endOffset: points + 2 });
    });
    await withLog(opts, async (log) => assert.deepEqual(await readAll(log), lines(0, points + 2)));
  }

  test('garbage after the last frame is cut off and appends continue at the right offset', async () => {
    const opts = await damaged((file) => appendFile(file, Buffer.from('PLG1 not a frame at all, just noise')));
    await assertRecovered(opts, 15);
  });

  test('a last frame cut short is dropped whole, never returned partially', async () => {
    const opts = await damaged((file, size) => truncate(file, size - 5));
    await assertRecovered(opts, 12);
  });

  test('a last frame with a flipped payload byte fails its CRC and is dropped', async () => {
    const opts = await damaged(async (file, size) => {
      const fh = await open(file, 'r+');
      await fh.write(Buffer.from('#'), 0, 1, size - 3);
      await fh.close();
    });
    await assertRecovered(opts, 12);
  });

  test('a zero-filled tail, as left by a power loss, is cut off', async () => {
    const opts = await damaged((file) => appendFile(file, Buffer.alloc(4096)));
    await assertRecovered(opts, 15);
  });

  test('a segment that does not continue the offsets of a torn predecessor is deleted', async () => {
    const opts = options({ segmentBytes: 1 });
    await withLog(opts, async (log) => {
      for (let i = 0; i < 4; i++) await log.append(lines(i * 2, 2));
    });
    const files = await segmentFiles(opts, 'acct/repo');
    assert.equal(files.length, 4);
    const secondLast = join(opts.dir, 'acct/repo', files.at(-2)!);
    await truncate(secondLast, (await stat(secondLast)).size - 1);
    await assertRecovered(opts, 4);
    assert.equal((await segmentFiles(opts, 'acct/repo')).length, 3);
  });

  test('damage in an older segment is reported as corruption instead of being cut off', async () => {
    const opts = options({ segmentBytes: 1 });
    await withLog(opts, async (log) => {
      for (let i = 0; i < 4; i++) await log.append(lines(i * 2, 2));
    });
    const first = join(opts.dir, 'acct/repo', (await segmentFiles(opts, 'acct/repo'))[0]!);
    await appendFile(first, Buffer.from('junk'));
    await assert.rejects(createLogStore(opts).open('acct/repo'), LogCorruptError);
  });

  test('a frame corrupted after opening makes read fail instead of returning bad points', async () => {
    const opts = options();
    await withLog(opts, async (log) => {
      await log.append(lines(0, 3));
      const file = join(opts.dir, 'acct/repo', (await segmentFiles(opts, 'acct/repo'))[0]!);
      const fh = await open(file, 'r+');
      await fh.write(Buffer.from('#'), 0, 1, 40);
      await fh.close();
      await assert.rejects(log.read(0, 3), LogCorruptError);
    });
  });
});

describe('repo log: retention', () => {
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  test('closed segments older than retentionMs are dropped and reads clamp to the first retained offset', async () => {
    // segmentBytes 1: every frame gets its own segment.
    const opts = options({ segmentBytes: 1, retentionMs: 60_000 });
    await withLog(opts, async (log, store) => {
      for (let i = 0; i < 3; i++) await log.append(lines(i * 2, 2));
      const cutoff = Date.now();
      await sleep(15);
      for (let i = 3; i < 6; i++) await log.append(lines(i * 2, 2));
      assert.equal(await store.enforceRetention(cutoff + 60_000 + 5), 3);
      assert.equal(log.startOffset(), 6);
      const r = await log.read(0, 4);
      assert.equal(r.from, 6);
      assert.deepEqual(r.lines, lines(6, 4));
      assert.equal(r.next, 10);
      assert.equal(await store.enforceRetention(cutoff + 60_000 + 5), 0);
    });
  });

  test('the active segment survives age retention even when everything is old', async () => {
    const opts = options({ segmentBytes: 1, retentionMs: 1000 });
    await withLog(opts, async (log, store) => {
      for (let i = 0; i < 4; i++) await log.append(lines(i, 1));
      assert.equal(await store.enforceRetention(Date.now() + 10_000), 3);
      assert.equal(log.startOffset(), 3);
      assert.equal(log.endOffset(), 4);
      assert.deepEqual(await readAll(log), lines(3, 1));
      assert.deepEqual(await log.append(lines(4, 1)), { baseOffset: 4, endOffset: 5 });
    });
  });

  test('the oldest closed segments are dropped while the log exceeds retentionBytes', async () => {
    const opts = options({ segmentBytes: 1 });
    let frameBytes = 0;
    await withLog(opts, async (log) => {
      for (let i = 0; i < 10; i++) await log.append(lines(0, 5));
      frameBytes = log.sizeBytes() / 10;
    });
    await withLog({ ...opts, retentionBytes: frameBytes * 4 }, async (log, store) => {
      assert.equal(await store.enforceRetention(), 6);
      assert.equal(log.sizeBytes(), frameBytes * 4);
      assert.equal(log.startOffset(), 30);
      assert.equal((await log.read(0, 100)).from, 30);
      assert.equal((await segmentFiles(opts, 'acct/repo')).length, 4);
    });
    await withLog(opts, async (log) => {
      assert.equal(log.startOffset(), 30);
      assert.equal((await readAll(log)).length, 20);
    });
  });
});
