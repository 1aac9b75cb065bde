/**
 * Load-strategy benchmark for the SQL engine (src/sql): how fast points get
 * into DuckDB, against how fast DuckDB runs the transform query over data it
 * already holds. Run: `npx tsx bench/sql-load.ts [points]` (default 1,000,000).
 *
 * Prints points/s for
 *  - load, row-wise Appender (one native call per value),
 *  - load, DuckDBDataChunk.setColumns (node-api vectors, DuckDBValues),
 *  - load, raw columnar chunks (src/sql/load.ts, what the engine uses),
 *  - the group-by query over the loaded in-memory table,
 *  - SqlEngine.run() end to end (create table, load, query, read rows),
 *  - SqlEngine.run() of `select * from t`, which reads every point back.
 */
import { DuckDBDataChunk, DuckDBInstance, DuckDBTimestampValue, type DuckDBAppender, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import type { Point, SchemaField } from '../src/ingest/types.ts';
import { SqlEngine } from '../src/sql/engine.ts';
import { appendRows, extractorFor } from '../src/sql/load.ts';
import { parseRfc3339 } from '../src/sql/time.ts';
import { createTableSql } from '../src/sql/types.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const ROUNDS = 5;
const SQL = 'select host, count(*), avg(latency) from t group by host';
const SCHEMA: SchemaField[] = [
  { key: 'host', valtype: 'string', required: true },
  { key: 'latency', valtype: 'long', required: true },
  { key: 'cpu', valtype: 'float', required: true },
  { key: 'region', valtype: 'string', required: true },
  { key: 'ts', valtype: 'date', required: true },
];
const REGIONS = ['cn-east-1', 'cn-north-1', 'us-west-2', 'eu-central-1', 'ap-southeast-1'];

function makePoints(n: number): Point[] {
  const base = Date.UTC(2017, 0, 2, 3, 4, 5);
  const points: Point[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const iso = new Date(base + i).toISOString(); // 2017-01-02T03:04:05.123Z
    points[i] = {
      host: 'host-' + (i % 100),
      latency: (i * 7919) % 1000,
      cpu: (i % 100) / 100,
      region: REGIONS[i % REGIONS.length],
      ts: iso.slice(0, 23) + '456789+08:00',
    };
  }
  // Points arrive JSON-decoded; the round trip flattens the concatenated
  // strings above, which V8 would otherwise flatten inside the timed loaders.
  return JSON.parse(JSON.stringify(points)) as Point[];
}

function tsMicros(s: unknown): bigint | null {
  const p = typeof s === 'string' ? parseRfc3339(s) : null;
  return p === null ? null : BigInt(p.seconds) * 1_000_000n + BigInt(p.micros);
}

/** Row-wise: one Appender call per value. */
function appendRowWise(appender: DuckDBAppender, points: readonly Point[]): void {
  for (const p of points) {
    appender.appendVarchar(p.host as string);
    appender.appendBigInt(BigInt(p.latency as number));
    appender.appendDouble(p.cpu as number);
    appender.appendVarchar(p.region as string);
    const ts = tsMicros(p.ts);
    if (ts === null) appender.appendNull();
    else appender.appendTimestamp(new DuckDBTimestampValue(ts));
    appender.endRow();
  }
}

/** node-api columnar: DuckDBValue columns through DuckDBDataChunk.setColumns. */
function appendApiChunks(appender: DuckDBAppender, points: readonly Point[]): void {
  const size = duckdb.vector_size();
  const types = SCHEMA.map((_f, i) => appender.columnType(i));
  for (let start = 0; start < points.length; start += size) {
    const batch = points.slice(start, start + size);
    const chunk = DuckDBDataChunk.create(types, batch.length);
    const cols: DuckDBValue[][] = [
      batch.map((p) => p.host as string),
      batch.map((p) => BigInt(p.latency as number)),
      batch.map((p) => p.cpu as number),
      batch.map((p) => p.region as string),
      batch.map((p) => {
        const ts = tsMicros(p.ts);
        return ts === null ? null : new DuckDBTimestampValue(ts);
      }),
    ];
    chunk.setColumns(cols);
    appender.appendDataChunk(chunk);
  }
}

type Loader = (appender: DuckDBAppender, points: readonly Point[]) => void;

async function timeLoad(conn: DuckDBConnection, loader: Loader, points: readonly Point[]): Promise<number> {
  await conn.run('DROP TABLE IF EXISTS t');
  await conn.run(createTableSql('t', SCHEMA));
  const t0 = performance.now();
  const appender = await conn.createAppender('t', null, 'temp');
  loader(appender, points);
  appender.closeSync();
  return performance.now() - t0;
}

/** Median of `rounds` timings of `fn` in ms. */
async function median(rounds: number, fn: () => Promise<number>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) times.push(await fn());
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? NaN;
}

const rate = (ms: number): string => `${Math.round(N / (ms / 1000)).toLocaleString('en-US').padStart(13)} points/s  (${ms.toFixed(1)} ms)`;

async function main(): Promise<void> {
  const points = makePoints(N);
  console.log(`${N.toLocaleString('en-US')} points: host string, latency long, cpu float, region string, ts date; median of ${ROUNDS}`);
  const instance = await DuckDBInstance.create(':memory:', { threads: '2', memory_limit: '4GB' });
  const conn = await instance.connect();

  const loaders: [string, Loader][] = [
    ['load, row-wise Appender', appendRowWise],
    ['load, DuckDBDataChunk.setColumns', appendApiChunks],
    ['load, raw columnar chunks (engine)', (a, p) => {
      const extract = extractorFor(SCHEMA);
      appendRows(a, SCHEMA, p.length, (start, n, cols) => extract(p, start, n, cols));
    }],
  ];
  for (const [name, loader] of loaders) {
    console.log(`${name.padEnd(38)} ${rate(await median(ROUNDS, () => timeLoad(conn, loader, points)))}`);
  }
  // The table now holds the data loaded by the engine's loader.
  const check = await conn.runAndReadAll('select count(*), count(distinct host), min(ts), max(ts) from t');
  console.log('loaded table check:', JSON.stringify(check.getRowsJson()[0]));
  const queryMs = await median(ROUNDS, async () => {
    const t0 = performance.now();
    await conn.run(SQL);
    return performance.now() - t0;
  });
  console.log(`${'query over in-memory table'.padEnd(38)} ${rate(queryMs)}`);
  conn.closeSync();
  instance.closeSync();

  const engine = await SqlEngine.create({ memoryLimit: '4GB', threads: 2 });
  let rows = 0;
  const runMs = await median(ROUNDS, async () => {
    const t0 = performance.now();
    rows = (await engine.run('t', SCHEMA, points, SQL, { timeoutMs: 60_000 })).rows.length;
    return performance.now() - t0;
  });
  console.log(`${'SqlEngine.run() end to end'.padEnd(38)} ${rate(runMs)}  -> ${rows} rows`);
  console.log(`run() throughput / in-memory query throughput = ${(queryMs / runMs).toFixed(3)}`);
  const allMs = await median(ROUNDS, async () => {
    const t0 = performance.now();
    rows = (await engine.run('t', SCHEMA, points, 'select * from t', { timeoutMs: 60_000 })).rows.length;
    return performance.now() - t0;
  });
  await engine.close();
  console.log(`${'SqlEngine.run() of select *'.padEnd(38)} ${rate(allMs)}  -> ${rows} rows`);
}

await main();
