/**
 * transform-throughput: one transform run over 1,000,000 source points (the
 * ingest bench's shape) per SQL query, timed through the runner's runNow,
 * against DuckDB running the same SQL over the same rows already in a table
 * in the same process. SQL transforms read their source where the stage
 * feeder put it while the points were pushed (decision 007), so the bench
 * also reports what staging costs and how far behind the last push it
 * finished. Then the steps one at a time, so the report shows where the
 * time goes.
 */
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { compileSchema, decodeColumns, type CompiledSchema } from '../src/ingest/points.ts';
import type { SchemaField } from '../src/ingest/types.ts';
import { appendRows } from '../src/sql/load.ts';
import { createTableSql } from '../src/sql/types.ts';
import type { RunSteps } from '../src/transforms/execute.ts';
import { fmtInt, fmtNum, sleep, type BenchContext, type Check, type ReportTable, type WorkloadResult } from './lib.ts';
import { SCHEMA } from './points.ts';
import { ACCOUNT, createTransforms, fillSource, medianMs, medianOf, repoSchema, startInProcess, timedRun, type InProcessApp, type Timing } from './transform-app.ts';

const N = 1_000_000;
const SOURCE = 'src';
/** Full runs per query: each needs its own transform (a run consumes the source). */
const RUN_REPS = 5;
const DUCK_REPS = 7;
const STEP_REPS = 3;
/** Bare durable writes; the fastest one is the floor, the case most favourable to the target. */
const FLOOR_REPS = 5;
const TARGET_RATIO = 0.5;

const QUERIES = [
  { id: 'group-by', sql: `select host, count(*), avg(latency) from ${SOURCE} group by host` },
  { id: 'projection', sql: `select host, latency * 2 as l2, cpu from ${SOURCE} where latency > 500` },
] as const;
type QueryId = (typeof QUERIES)[number]['id'];

const names = (q: QueryId, rep: number): { name: string; dest: string } => {
  const name = `${q.replace('-', '_')}_${rep}`;
  return { name, dest: `${name}_out` };
};

interface Steps {
  /** log.read of the N wire lines. */
  readMs: number;
  /** decodeColumns + appendRows of them into a fresh table: what the stage feeder does after reading. */
  loadMs: number;
  duck: Record<QueryId, { ms: number; all: number[]; rows: number }>;
  /** Bytes the projection appended in one run, and the fastest of a bare write + fsync of that many bytes to a new file. */
  floor: { bytes: number; ms: number; all: number[] };
}

/**
 * The least any durable destination costs: writeSync + fsyncSync of `bytes`
 * to a new file in the data dir, no encoding, no framing (median of `reps`).
 */
async function timeDurableWrite(dir: string, bytes: number, reps: number): Promise<Timing> {
  const buf = Buffer.alloc(bytes, 0x61);
  const files: string[] = [];
  try {
    // Files are kept until the end, as each run's destination keeps its own:
    // deleting one would hand its page cache to the next write, which then
    // costs a quarter of a write into fresh pages on these VMs.
    return await medianMs(reps, async () => {
      const file = path.join(dir, `write-floor-${files.length}`);
      files.push(file);
      const fd = openSync(file, 'w');
      try {
        writeSync(fd, buf);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    });
  } finally {
    for (const f of files) unlinkSync(f);
  }
}

/** Times each step on its own, over the rows the full runs read. */
async function measureSteps(bench: BenchContext, app: InProcessApp, schema: SchemaField[]): Promise<Steps> {
  const repo = app.ctx.repos.must(ACCOUNT, SOURCE);
  const log = await app.ctx.repos.log(ACCOUNT, repo);
  let lines: string[] = [];
  const read = await medianMs(STEP_REPS, async () => {
    lines = [];
    lines = (await log.read(log.startOffset(), N)).lines;
  });
  if (lines.length !== N) throw new Error(`read ${lines.length} of ${N} points`);

  bench.log('DuckDB-only baseline: loading the same rows into an in-memory table (timed as staging, not as query)');
  // Same threads and memory limit as the app's engine, so only the loading differs.
  const instance = await DuckDBInstance.create(':memory:', { threads: String(app.config.sqlThreads), memory_limit: app.config.sqlMemory });
  const closeInstance = bench.cleanup.add('close baseline DuckDB', () => instance.closeSync());
  const conn = await instance.connect();
  const duck = {} as Steps['duck'];
  let loadMs: number;
  try {
    const compiled = compileSchema(schema);
    const load = await medianMs(STEP_REPS, () => loadTable(conn, schema, compiled, lines));
    loadMs = load.median;
    const check = await conn.runAndReadAll(`select count(*)::INTEGER from ${SOURCE}`);
    if (check.getRows()[0]?.[0] !== N) throw new Error(`baseline table holds ${String(check.getRows()[0]?.[0])} rows, expected ${N}`);
    for (const q of QUERIES) {
      let rows = 0;
      const t = await medianMs(DUCK_REPS, async () => {
        rows = (await conn.run(q.sql)).rowCount;
      }, 1);
      duck[q.id] = { ms: t.median, all: t.all, rows };
    }
  } finally {
    conn.closeSync();
    await closeInstance();
  }

  const out = app.ctx.repos.must(ACCOUNT, names('projection', 0).dest);
  const bytes = (await app.ctx.repos.log(ACCOUNT, out)).sizeBytes();
  const floor = await timeDurableWrite(app.config.dataDir, bytes, FLOOR_REPS);
  return { readMs: read.median, loadMs, duck, floor: { bytes, ms: Math.min(...floor.all), all: floor.all } };
}

/** (Re)creates the baseline table and loads the stored lines the way the stage feeder does. */
async function loadTable(conn: DuckDBConnection, schema: SchemaField[], compiled: CompiledSchema, lines: string[]): Promise<void> {
  await conn.run(`DROP TABLE IF EXISTS ${SOURCE}`);
  await conn.run(createTableSql(SOURCE, schema));
  const appender = await conn.createAppender(SOURCE, null, 'temp');
  appendRows(appender, schema, lines.length, (start, n, cols) => decodeColumns(lines, start, n, compiled, cols));
  appender.closeSync();
}

const rate = (ms: number): number => N / (ms / 1000);

interface Runs {
  ms: number[];
  /** V8 GC pauses inside each run. */
  gcMs: number[];
  /** The run's own account of its parts (status.lastRun.steps). */
  steps: RunSteps[];
  out: number;
}

/** Waits until the stage feeder has staged all `n` points of the source; returns when (ms, performance.now()). */
async function waitStaged(app: InProcessApp, n: number, timeoutMs = 120_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const st = app.ctx.stages.staged(ACCOUNT, SOURCE);
    if (st && st.end >= n) return performance.now();
    if (performance.now() > deadline) throw new Error(`staging reached ${st?.end ?? 0} of ${n} points in ${timeoutMs} ms`);
    await sleep(2);
  }
}

interface Staging {
  /** Pushing all N points (the stage feeder runs alongside). */
  fillS: number;
  /** From the last push's acknowledgement to the last point staged. */
  behindMs: number;
}

export async function runThroughput(bench: BenchContext): Promise<WorkloadResult> {
  const app = await startInProcess(bench, 'transform-throughput', { transformBatch: N });
  app.ctx.repos.create(ACCOUNT, SOURCE, { region: 'nb', schema: SCHEMA });
  const specs = [];
  for (let r = 0; r < RUN_REPS; r++) {
    for (const q of QUERIES) specs.push({ ...names(q.id, r), body: { mode: 'sql', code: q.sql, interval: '10m' } });
  }
  await createTransforms(app, SOURCE, specs);
  const t0 = performance.now();
  await fillSource(app, SOURCE, N);
  const t1 = performance.now();
  const staged = await waitStaged(app, N);
  const staging: Staging = { fillS: (t1 - t0) / 1000, behindMs: staged - t1 };
  bench.log(`pushed ${fmtInt(N)} points in ${fmtNum(staging.fillS)} s (not measured); staged ${fmtInt(staging.behindMs)} ms after the last push; ${RUN_REPS} timed runs per query`);

  // Queries take turns so machine noise hits both alike.
  const runs: Record<QueryId, Runs> = { 'group-by': { ms: [], gcMs: [], steps: [], out: 0 }, projection: { ms: [], gcMs: [], steps: [], out: 0 } };
  for (let r = 0; r < RUN_REPS; r++) {
    for (const q of QUERIES) {
      const { name } = names(q.id, r);
      const res = await timedRun(app, SOURCE, name, N);
      runs[q.id].ms.push(res.ms);
      runs[q.id].gcMs.push(res.gcMs);
      runs[q.id].steps.push(res.steps);
      runs[q.id].out = res.out;
      bench.log(`${q.id} run ${r + 1}: ${fmtInt(res.ms)} ms (GC ${fmtInt(res.gcMs)} ms), ${fmtInt(res.out)} rows out`);
    }
  }
  const steps = await measureSteps(bench, app, repoSchema(app, SOURCE));
  return report(app, runs, steps, staging);
}

function report(app: InProcessApp, runs: Record<QueryId, Runs>, s: Steps, staging: Staging): WorkloadResult {
  const tables: ReportTable[] = [];
  const checks: Check[] = [];
  const json: Record<string, unknown> = { points: N, fsync: app.config.fsync, sqlThreads: app.config.sqlThreads, staging, steps: s };
  const stageMs = s.readMs + s.loadMs;
  for (const q of QUERIES) {
    const runMs = medianOf(runs[q.id].ms);
    const duck = s.duck[q.id];
    const ratio = rate(runMs) / rate(duck.ms);
    const part = (k: keyof RunSteps): number => medianOf(runs[q.id].steps.map((x) => x[k]));
    const rest = runMs - part('compute') - part('encode') - part('write');
    const row = (label: string, ms: number, share = true): string[] =>
      [label, fmtNum(ms), fmtInt(rate(ms)), share ? `${fmtNum((100 * ms) / runMs, 0)} %` : ''];
    tables.push({
      title: `${q.id}: \`${q.sql}\` over ${fmtInt(N)} points, ${fmtInt(runs[q.id].out)} rows out`,
      columns: ['step', 'ms', 'points/s', 'of run'],
      rows: [
        row(`transform run (runNow, median of ${RUN_REPS})`, runMs),
        row(`DuckDB only: same SQL, rows already in memory (median of ${DUCK_REPS})`, duck.ms),
        ['run breakdown, as the runs timed themselves (status.lastRun.steps, medians):', '', '', ''],
        row('  compute: view over the staged range + SQL', part('compute')),
        row(`  encode: ${fmtInt(runs[q.id].out)} result rows from their columns into one log payload`, part('encode')),
        row(`  write: append (fsync=${app.config.fsync}) + offset commit`, part('write')),
        row('  rest by difference (runner, slots, status)', rest),
        row('V8 GC pauses inside the full runs (overlap the steps; median)', medianOf(runs[q.id].gcMs)),
        ...(q.id === 'projection'
          ? [
            row(`floor: write + fsync of the run's ${fmtInt(s.floor.bytes / 1e6)} MB to a new file, nothing else (fastest of ${FLOOR_REPS})`, s.floor.ms),
            row('floor: DuckDB only + that write', duck.ms + s.floor.ms),
          ]
          : []),
        ['staging, paid as points arrive, not in the run (shared by all SQL transforms of the source):', '', '', ''],
        row('  log read + decode into columns + load into DuckDB, timed alone', stageMs, false),
        row(`  of which log read / decodeColumns + appendRows: ${fmtNum(s.readMs)} / ${fmtNum(s.loadMs)} ms`, stageMs, false),
      ],
    });
    checks.push({
      name: `transform-throughput ${q.id}: run points/s / DuckDB-only points/s`,
      target: `>= ${TARGET_RATIO}`,
      actual: `${ratio.toFixed(3)} (${fmtInt(rate(runMs))} vs ${fmtInt(rate(duck.ms))} points/s)`,
      ok: ratio >= TARGET_RATIO,
    });
    json[q.id] = {
      sql: q.sql, rowsOut: runs[q.id].out, runSteps: runs[q.id].steps, runMs: runs[q.id].ms, runGcMs: runs[q.id].gcMs, runMedianMs: runMs, runPointsPerSec: rate(runMs),
      duckMs: duck.all, duckMedianMs: duck.ms, duckPointsPerSec: rate(duck.ms), ratio, restMs: rest,
    };
  }
  const notes = [
    `Source pushed with fsync=${app.config.fsync} (the server default) through RepoService.push in ${fmtNum(staging.fillS)} s while the stage feeder decoded it`,
    `into DuckDB; the last point was staged ${fmtInt(staging.behindMs)} ms after the last push was acknowledged (staging ${fmtInt(rate(stageMs))} points/s when timed alone).`,
    `The timed runs append to their destination with the same fsync setting. DuckDB: ${app.config.sqlThreads} threads, memory_limit ${app.config.sqlMemory},`,
    'same for the baseline instance. DuckDB-only = conn.run(sql) with the result materialised in DuckDB, not converted to JS objects.',
    `A durable destination costs at least the "floor" rows: DuckDB-only plus a bare write + fsync of the projection's output gives`,
    `${(rate(s.duck.projection.ms + s.floor.ms) / rate(s.duck.projection.ms)).toFixed(3)} of the DuckDB-only figure, the most any run that stores its output can reach on this machine.`,
  ];
  return { tables, checks, json, notes };
}
