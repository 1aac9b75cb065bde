/**
 * transform-throughput: one transform run over 1,000,000 source points (the
 * ingest bench's shape) per SQL query, timed through the runner's runNow,
 * against DuckDB running the same SQL over the same rows already in a table
 * in the same process. Then the run's steps one at a time, so the report
 * shows where the time goes.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { encodePoint } from '../src/ingest/points.ts';
import type { Point, SchemaField } from '../src/ingest/types.ts';
import { SqlEngine } from '../src/sql/engine.ts';
import { appendPoints } from '../src/sql/load.ts';
import { createTableSql } from '../src/sql/types.ts';
import { fmtInt, fmtNum, type BenchContext, type Check, type ReportTable, type WorkloadResult } from './lib.ts';
import { SCHEMA } from './points.ts';
import { ACCOUNT, createTransforms, fillSource, medianMs, medianOf, timeReadDecode, repoSchema, startInProcess, timeAppend, timedRun, type InProcessApp } from './transform-app.ts';

const N = 1_000_000;
const SOURCE = 'src';
/** Full runs per query: each needs its own transform (a run consumes the source). */
const RUN_REPS = 5;
const DUCK_REPS = 7;
const STEP_REPS = 3;
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
  readMs: number;
  decodeMs: number;
  /** appendPoints into a fresh table (what SqlEngine.run's load does). */
  loadMs: number;
  duck: Record<QueryId, { ms: number; all: number[]; rows: number }>;
  engine: Record<QueryId, { ms: number; all: number[]; rows: number }>;
  encode: Record<QueryId, number>;
  /** One append of the encoded result lines to a scratch repo (fsync per config). */
  append: Record<QueryId, number>;
}

/** Times each step of a run on its own, over the rows the full runs read. */
async function measureSteps(bench: BenchContext, app: InProcessApp, schema: SchemaField[]): Promise<Steps> {
  const { read, decode, points: decoded } = await timeReadDecode(app, SOURCE, N, STEP_REPS);
  let points: Point[] = decoded;

  bench.log('DuckDB-only baseline: loading the same rows into an in-memory table (not timed as query)');
  // Same threads and memory limit as the app's engine, so only the loading differs.
  const instance = await DuckDBInstance.create(':memory:', { threads: String(app.config.sqlThreads), memory_limit: app.config.sqlMemory });
  const closeInstance = bench.cleanup.add('close baseline DuckDB', () => instance.closeSync());
  const conn = await instance.connect();
  const duck = {} as Steps['duck'];
  let loadMs: number;
  try {
    const load = await medianMs(STEP_REPS, () => loadTable(conn, schema, points));
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

  bench.log('SqlEngine.run and encode on the pre-decoded points');
  const engine = await SqlEngine.create({ memoryLimit: app.config.sqlMemory, threads: app.config.sqlThreads });
  const closeEngine = bench.cleanup.add('close bench SqlEngine', () => engine.close());
  const eng = {} as Steps['engine'];
  const encode = {} as Steps['encode'];
  const append = {} as Steps['append'];
  try {
    for (const q of QUERIES) {
      let rows: Point[] = [];
      const t = await medianMs(STEP_REPS, async () => {
        rows = [];
        rows = (await engine.run(SOURCE, schema, points, q.sql, { timeoutMs: app.config.sqlTimeoutMs })).rows;
      });
      eng[q.id] = { ms: t.median, all: t.all, rows: rows.length };
      const dest = app.ctx.repos.must(ACCOUNT, names(q.id, 0).dest);
      const destSchema = app.ctx.repos.compiled(ACCOUNT, dest);
      let encoded: string[] = [];
      encode[q.id] = (await medianMs(STEP_REPS, async () => {
        encoded = [];
        encoded = rows.map((p) => encodePoint(p, destSchema));
      })).median;
      append[q.id] = await timeAppend(app, dest.schema, encoded, STEP_REPS);
    }
  } finally {
    await closeEngine();
  }
  return { readMs: read.median, decodeMs: decode.median, loadMs, duck, engine: eng, encode, append };
}

/** (Re)creates the baseline table and appends the points the way SqlEngine.run loads them. */
async function loadTable(conn: DuckDBConnection, schema: SchemaField[], points: Point[]): Promise<void> {
  await conn.run(`DROP TABLE IF EXISTS ${SOURCE}`);
  await conn.run(createTableSql(SOURCE, schema));
  const appender = await conn.createAppender(SOURCE, null, 'temp');
  appendPoints(appender, schema, points);
  appender.closeSync();
}

const rate = (ms: number): number => N / (ms / 1000);

interface Runs {
  ms: number[];
  /** V8 GC pauses inside each run. */
  gcMs: number[];
  out: number;
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
  const fillS = (performance.now() - t0) / 1000;
  bench.log(`pushed ${fmtInt(N)} points in ${fmtNum(fillS)} s (not measured); ${RUN_REPS} timed runs per query`);

  // Queries take turns so machine noise hits both alike.
  const runs: Record<QueryId, Runs> = { 'group-by': { ms: [], gcMs: [], out: 0 }, projection: { ms: [], gcMs: [], out: 0 } };
  for (let r = 0; r < RUN_REPS; r++) {
    for (const q of QUERIES) {
      const { name } = names(q.id, r);
      const res = await timedRun(app, SOURCE, name, N);
      runs[q.id].ms.push(res.ms);
      runs[q.id].gcMs.push(res.gcMs);
      runs[q.id].out = res.out;
      bench.log(`${q.id} run ${r + 1}: ${fmtInt(res.ms)} ms (GC ${fmtInt(res.gcMs)} ms), ${fmtInt(res.out)} rows out`);
    }
  }
  const steps = await measureSteps(bench, app, repoSchema(app, SOURCE));
  return report(app, runs, steps, fillS);
}

function report(app: InProcessApp, runs: Record<QueryId, Runs>, s: Steps, fillS: number): WorkloadResult {
  const tables: ReportTable[] = [];
  const checks: Check[] = [];
  const json: Record<string, unknown> = { points: N, fsync: app.config.fsync, sqlThreads: app.config.sqlThreads, fillSeconds: fillS, steps: s };
  for (const q of QUERIES) {
    const runMs = medianOf(runs[q.id].ms);
    const duck = s.duck[q.id];
    const eng = s.engine[q.id];
    const ratio = rate(runMs) / rate(duck.ms);
    const rest = runMs - s.readMs - s.decodeMs - eng.ms - s.encode[q.id] - s.append[q.id];
    const row = (label: string, ms: number, share = true): string[] =>
      [label, fmtNum(ms), fmtInt(rate(ms)), share ? `${fmtNum((100 * ms) / runMs, 0)} %` : ''];
    tables.push({
      title: `${q.id}: \`${q.sql}\` over ${fmtInt(N)} points, ${fmtInt(runs[q.id].out)} rows out`,
      columns: ['step', 'ms', 'points/s', 'of run'],
      rows: [
        row(`transform run (runNow, median of ${RUN_REPS})`, runMs),
        row(`DuckDB only: same SQL, rows already in memory (median of ${DUCK_REPS})`, duck.ms),
        [`breakdown, each step timed alone (median of ${STEP_REPS}):`, '', '', ''],
        row('  log read (wire lines)', s.readMs),
        row('  decodeLine -> Point objects', s.decodeMs),
        row('  SqlEngine.run (create, check, load, query, read rows)', eng.ms),
        row('    of which load (appendPoints, timed on its own)', s.loadMs),
        row(`  encodePoint of the ${fmtInt(eng.rows)} result rows`, s.encode[q.id]),
        row(`  append of the encoded rows (fsync=${app.config.fsync})`, s.append[q.id]),
        row('  rest by difference (offsets, GC, ...)', rest),
        row('V8 GC pauses inside the full runs (overlap the steps; median)', medianOf(runs[q.id].gcMs)),
      ],
    });
    checks.push({
      name: `transform-throughput ${q.id}: run points/s / DuckDB-only points/s`,
      target: `>= ${TARGET_RATIO}`,
      actual: `${ratio.toFixed(3)} (${fmtInt(rate(runMs))} vs ${fmtInt(rate(duck.ms))} points/s)`,
      ok: ratio >= TARGET_RATIO,
    });
    json[q.id] = {
      sql: q.sql, rowsOut: runs[q.id].out, runMs: runs[q.id].ms, runGcMs: runs[q.id].gcMs, runMedianMs: runMs, runPointsPerSec: rate(runMs),
      duckMs: duck.all, duckMedianMs: duck.ms, duckPointsPerSec: rate(duck.ms), ratio, restMs: rest,
    };
  }
  const notes = [
    `Source loaded with fsync=${app.config.fsync} (the server default) in ${fmtNum(fillS)} s through RepoService.push (not measured);`,
    `the timed runs append to their destination with the same setting. DuckDB: ${app.config.sqlThreads} threads, memory_limit ${app.config.sqlMemory},`,
    'same for the baseline instance. DuckDB-only = conn.run(sql) with the result materialised in DuckDB, not converted to JS objects.',
  ];
  return { tables, checks, json, notes };
}
