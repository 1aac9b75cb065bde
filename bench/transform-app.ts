/**
 * The server built in process (buildApp on a temp data dir, not listening)
 * for the transform workloads that time `runNow`: creating the source repo,
 * filling it with the ingest bench's points, creating transforms and timing
 * one run each. Everything it starts is undone by the workload's Cleanup.
 */
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { buildApp } from '../src/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import type { AppContext } from '../src/context.ts';
import { decodeLine } from '../src/ingest/points.ts';
import type { Point, SchemaField } from '../src/ingest/types.ts';
import { consumerId, type RunSteps } from '../src/transforms/execute.ts';
import type { TransformStatus } from '../src/transforms/runner.ts';
import { sleep, tempDir, type BenchContext } from './lib.ts';
import { makeBodies } from './points.ts';

export const ACCOUNT = 'bench';

export interface InProcessApp {
  ctx: AppContext;
  config: Config;
}

/** Builds the app on a fresh temp dir; closed (before the dir goes) when the workload ends. */
export async function startInProcess(bench: BenchContext, prefix: string, overrides: Record<string, unknown> = {}): Promise<InProcessApp> {
  const dir = tempDir(bench.cleanup, prefix);
  // An empty env: a developer's PIPELINE_* settings must not change what is measured.
  const config = loadConfig({}, {
    dataDir: dir,
    accounts: [{ id: ACCOUNT, accessKey: 'benchAccessKey01', secretKey: 'benchSecretKey0123456789abcdef' }],
    logLevel: 'silent',
    ...overrides,
  });
  const { app, ctx } = await buildApp(config, { logger: false });
  bench.cleanup.add(`close in-process app (${prefix})`, () => app.close());
  return { ctx, config };
}

/**
 * Creates transforms on a still empty source, then waits out their first
 * scheduled tick: the runner runs every new transform 1 s after it is added
 * whatever its interval, and that tick must find nothing to do, so that only
 * the bench's runNow reads the data pushed afterwards.
 */
export async function createTransforms(app: InProcessApp, source: string, specs: Array<{ name: string; dest: string; body: Record<string, unknown> }>): Promise<void> {
  for (const s of specs) await app.ctx.transforms.create(ACCOUNT, source, s.name, s.dest, s.body);
  await sleep(1_500);
}

/**
 * Pushes exactly `n` of the ingest bench's points (bench/points.ts) into
 * `repo` through RepoService.push (the validation an HTTP push does, without
 * HTTP): ~4 MB per append, so loading is a few seconds even with fsync.
 */
export async function fillSource(app: InProcessApp, repo: string, n: number): Promise<void> {
  const bodyBytes = 4 << 20;
  // Points are ~90 bytes; sizing for 110 generates a few bodies too many, and the last one pushed is cut.
  const bodies = makeBodies(Math.ceil((n * 110) / bodyBytes) + 1, bodyBytes);
  let pushed = 0;
  for (const b of bodies) {
    if (pushed >= n) break;
    let text = b.bytes.toString('utf8');
    let count = b.points;
    if (pushed + count > n) {
      count = n - pushed;
      text = text.split('\n', count).join('\n');
    }
    pushed += await app.ctx.repos.push(ACCOUNT, repo, text);
  }
  if (pushed !== n) throw new Error(`generated only ${pushed} of ${n} points`);
}

/** Fails when a transform already consumed source points (a scheduled run got in before the bench's). */
export function assertUnconsumed(app: InProcessApp, source: string, name: string): void {
  const off = app.ctx.meta.getOffset(ACCOUNT, consumerId({ repo: source, name }));
  if (off && off.nextOffset > 0) throw new Error(`transform ${source}/${name} already consumed ${off.nextOffset} points before the timed run`);
}

/**
 * One timed `runNow`: read + decode + plugin/SQL + encode + append (+ fsync
 * per the config) + offset commit. runNow records a failed run in the status
 * instead of throwing, so the status is checked: the run must have taken all
 * `expectIn` points. `gcMs` is the V8 GC pause time inside the run (it
 * overlaps the steps, it is not one of them).
 */
export async function timedRun(app: InProcessApp, source: string, name: string, expectIn: number): Promise<{ ms: number; out: number; gcMs: number; steps: RunSteps }> {
  assertUnconsumed(app, source, name);
  const { result: ms, gcMs } = await withGcTime(async () => {
    const t0 = performance.now();
    await app.ctx.runner.runNow(ACCOUNT, source, name);
    return performance.now() - t0;
  });
  const row = app.ctx.meta.getTransform(ACCOUNT, source, name);
  if (!row) throw new Error(`transform ${source}/${name} vanished`);
  const st: TransformStatus = await app.ctx.runner.status(ACCOUNT, row);
  if (st.lastError !== null) throw new Error(`run of ${source}/${name} failed: ${st.lastError}`);
  if (st.lastRun?.in !== expectIn) throw new Error(`run of ${source}/${name} read ${st.lastRun?.in ?? 0} points, expected ${expectIn}`);
  return { ms, out: st.lastRun.out, gcMs, steps: st.lastRun.steps };
}

/** Runs `fn` and sums the V8 GC pauses that started while it ran. */
async function withGcTime<T>(fn: () => Promise<T>): Promise<{ result: T; gcMs: number }> {
  const entries: PerformanceEntry[] = [];
  const obs = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  try {
    const result = await fn();
    const t1 = performance.now();
    // GC entries are delivered on a later tick, not by takeRecords().
    await sleep(20);
    const gcMs = entries.filter((e) => e.startTime >= t0 && e.startTime <= t1).reduce((sum, e) => sum + e.duration, 0);
    return { result, gcMs };
  } finally {
    obs.disconnect();
  }
}

/** The repo's schema (after a transform created or grew it). */
export function repoSchema(app: InProcessApp, repo: string): SchemaField[] {
  return app.ctx.repos.must(ACCOUNT, repo).schema;
}

/** Median of numbers (middle element of the sorted copy; upper middle for even counts). */
export function medianOf(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Median ms of `reps` calls of a timed async function, after `warmup` untimed calls. */
/** Median and every sample of a timed step, in ms. */
export type Timing = { median: number; all: number[] };

export async function medianMs(reps: number, fn: () => Promise<unknown>, warmup = 0): Promise<{ median: number; all: number[] }> {
  for (let i = 0; i < warmup; i++) await fn();
  const all: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    all.push(performance.now() - t0);
  }
  return { median: medianOf(all), all };
}

let scratchCount = 0;

/**
 * Median ms of appending `lines` (one append, as a run does) to a fresh
 * scratch repo with `schema`, fsync per the config: the append step of a run
 * timed on its own.
 */
export async function timeAppend(app: InProcessApp, schema: SchemaField[], lines: string[], reps: number): Promise<number> {
  const repo = app.ctx.repos.create(ACCOUNT, `scratch_${++scratchCount}`, { region: 'nb', schema });
  const log = await app.ctx.repos.log(ACCOUNT, repo);
  return (await medianMs(reps, () => log.append(lines))).median;
}

/**
 * Times reading the source repo's first `n` points from the log and decoding
 * them, each step alone (median of `reps`); returns the decoded points. Each
 * repetition drops the previous result first, so a step pays the GC of its own
 * allocations, not of two copies.
 */
export async function timeReadDecode(app: InProcessApp, source: string, n: number, reps: number): Promise<{ read: Timing; decode: Timing; points: Point[] }> {
  const repo = app.ctx.repos.must(ACCOUNT, source);
  const log = await app.ctx.repos.log(ACCOUNT, repo);
  const compiled = app.ctx.repos.compiled(ACCOUNT, repo);
  let lines: string[] = [];
  const read = await medianMs(reps, async () => {
    lines = [];
    lines = (await log.read(log.startOffset(), n)).lines;
  });
  if (lines.length !== n) throw new Error(`read ${lines.length} of ${n} points`);
  let points: Point[] = [];
  const decode = await medianMs(reps, async () => {
    points = [];
    points = lines.map((l) => decodeLine(l, compiled));
  });
  return { read, decode, points };
}
