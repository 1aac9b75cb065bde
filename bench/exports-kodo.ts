/**
 * exports-kodo: 1,000,000 points (the ingest bench's shape) through the kodo
 * sink to one parquet file in the local bucket store, as the engine drives
 * it (batches of 20,000 stored lines, then the tick that closes the file),
 * against DuckDB alone copying the same rows from a table to a parquet file
 * (the rows already loaded; only the COPY is timed). Both run in this
 * process with the same DuckDB settings; runs alternate and the medians
 * are compared. Target (issue 9): sink >= 0.5x DuckDB alone.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { FastifyBaseLogger } from 'fastify';
import { loadConfig } from '../src/config.ts';
import { KodoSink, parquetPaths } from '../src/exports/kodo/sink.ts';
import { parseKodoSpec } from '../src/exports/kodo/spec.ts';
import type { ExportBatch } from '../src/exports/shared/sink.ts';
import { compileSchema, decodeColumns, decodeLine } from '../src/ingest/points.ts';
import { appendRows } from '../src/sql/load.ts';
import { createTableSql, quoteLiteral } from '../src/sql/types.ts';
import { fmtInt, fmtNum, tempDir, type BenchContext, type Workload, type WorkloadResult } from './lib.ts';
import { makeBodies, SCHEMA } from './points.ts';

const N = 1_000_000;
const BATCH = 20_000;
const REPS = 3;
const TARGET = 0.5;

function makeLines(): string[] {
  const lines: string[] = [];
  for (const body of makeBodies(Math.ceil(N / 9000) + 5, 1024 * 1024)) {
    for (const l of body.bytes.toString('utf8').split('\n')) if (l !== '' && lines.length < N) lines.push(l);
  }
  if (lines.length < N) throw new Error(`generated only ${lines.length} points`);
  return lines;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const silent = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, fatal() {}, child() { return silent; }, level: 'silent' } as unknown as FastifyBaseLogger;

async function runWorkload(ctx: BenchContext): Promise<WorkloadResult> {
  const dir = tempDir(ctx.cleanup, 'bench-kodo-');
  const config = loadConfig({}, { dataDir: dir, accounts: [{ id: 'bench', accessKey: 'bench-ak-0001', secretKey: 'bench-sk-00000000000001' }], logLevel: 'silent' });
  ctx.log('generating 1M points');
  const lines = makeLines();
  const times = new Array<number>(N).fill(Date.UTC(2026, 10, 24, 8));
  const schema = compileSchema(SCHEMA);
  const repo = { name: 'src', uid: randomBytes(6).toString('hex'), region: 'nb', group: null, schema: SCHEMA, derivedFrom: null, extra: {}, createTime: '', updateTime: '' };
  const spec = parseKodoSpec({ bucket: 'bench', format: 'parquet' });

  const sinkRun = async (rep: number, fused = true): Promise<number> => {
    parquetPaths.fused = fused;
    let t = Date.UTC(2026, 10, 24, 8);
    const sink = new KodoSink(spec, { account: 'bench', exportName: `e${rep}`, repo, schema, config, log: silent, now: () => t });
    const never = new AbortController().signal;
    const started = performance.now();
    for (let from = 0; from < N; from += BATCH) {
      const b: ExportBatch = { from, lines: lines.slice(from, from + BATCH), times: times.slice(from, from + BATCH), points: () => lines.slice(from, from + BATCH).map((l) => decodeLine(l, schema)) };
      await sink.deliver(b, never);
    }
    t += 30_000;
    const acked = await sink.tick(never);
    const ms = performance.now() - started;
    if (acked !== N) throw new Error(`sink acked ${acked}, expected ${N}`);
    await sink.close();
    parquetPaths.fused = true;
    return ms;
  };

  // DuckDB alone: the same rows in a table (loaded untimed), COPY TO parquet timed.
  const db = await DuckDBInstance.create(':memory:', { memory_limit: config.sqlMemory, threads: String(config.sqlThreads) });
  ctx.cleanup.add('duckdb', () => db.closeSync());
  const conn = await db.connect();
  await conn.run(createTableSql('src', SCHEMA));
  const load = async (table: string): Promise<number> => {
    const started = performance.now();
    const appender = await conn.createAppender(table, null, 'temp');
    appendRows(appender, SCHEMA, N, (start, n, cols) => decodeColumns(lines, start, n, schema, cols));
    appender.closeSync();
    return performance.now() - started;
  };
  await load('src');
  // The floor of any sink that writes parquet through DuckDB: the stored lines decoded into a table.
  const loadRun = async (rep: number): Promise<number> => {
    await conn.run(createTableSql(`l${rep}`, SCHEMA));
    const ms = await load(`l${rep}`);
    await conn.run(`DROP TABLE l${rep}`);
    return ms;
  };
  const duckRun = async (rep: number): Promise<number> => {
    const file = path.join(dir, `duck-${rep}.parquet`);
    const started = performance.now();
    await conn.run(`COPY src TO ${quoteLiteral(file)} (FORMAT parquet)`);
    const ms = performance.now() - started;
    rmSync(file, { force: true });
    return ms;
  };

  const sinkMs: number[] = [];
  const duckMs: number[] = [];
  const loadMs: number[] = [];
  const jsMs: number[] = [];
  await sinkRun(-1); // warm-up: JIT, DuckDB instance
  await sinkRun(-2, false);
  for (let rep = 0; rep < REPS; rep++) {
    ctx.log(`round ${rep + 1}/${REPS}`);
    duckMs.push(await duckRun(rep));
    loadMs.push(await loadRun(rep));
    sinkMs.push(await sinkRun(rep));
    jsMs.push(await sinkRun(REPS + rep, false));
  }
  conn.closeSync();
  let bytesOut = 0;
  const root = path.join(config.bucketsDir, 'bench');
  const first = readdirSync(root)[0];
  if (first) bytesOut = statSync(path.join(root, first)).size;
  const sink = median(sinkMs);
  const duck = median(duckMs);
  const ratio = duck / sink;
  const loaded = median(loadMs);
  const js = median(jsMs);
  return {
    tables: [{
      title: `kodo parquet export: ${fmtInt(N)} points to one parquet file (${fmtNum(bytesOut / 1048576)} MiB), median of ${REPS}`,
      columns: ['path', 'ms', 'points/s', 'vs DuckDB alone'],
      rows: [
        ['kodo sink (fused loader + COPY + publish)', fmtNum(sink, 0), fmtInt(N / (sink / 1000)), fmtNum(ratio, 2) + 'x'],
        ['kodo sink, decodeColumns + appendRows (before fused.ts)', fmtNum(js, 0), fmtInt(N / (js / 1000)), fmtNum(duck / js, 2) + 'x'],
        ['DuckDB alone (COPY table TO parquet)', fmtNum(duck, 0), fmtInt(N / (duck / 1000)), '1.00x'],
        ['  part of the sink: stored lines -> DuckDB table (decodeColumns + appendRows)', fmtNum(loaded, 0), fmtInt(N / (loaded / 1000)), '-'],
      ],
    }],
    checks: [{ name: 'kodo parquet vs DuckDB copying the same rows', target: `>= ${TARGET}x`, actual: `${fmtNum(ratio, 2)}x`, ok: ratio >= TARGET }],
    json: { points: N, sinkMs, jsMs, jsRatio: duck / js, duckMs, loadMs, sinkMedianMs: sink, duckMedianMs: duck, loadMedianMs: loaded, ratio, parquetBytes: bytesOut },
  };
}

export const kodoExportWorkload: Workload = {
  name: 'exports-kodo',
  description: '1M points through the kodo sink to parquet vs DuckDB copying the same rows to parquet',
  run: runWorkload,
};
