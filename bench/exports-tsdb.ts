/**
 * exports-tsdb: points/s into a real influxd through the tsdb sink (convert
 * the stored lines, escape, POST /write in 5,000-line requests)
 * against posting the same prebuilt line protocol with undici in the same
 * requests, in the same run. Passes alternate between the two, each into a
 * fresh database, so influxd's own pace and the machine's noise hit both
 * alike. Target (issue 9): sink >= 0.8x direct.
 */
import { Pool } from 'undici';
import { encodeRecords } from '../src/exports/tsdb/encode.ts';
import { tsdbKind } from '../src/exports/tsdb/sink.ts';
import { compileTsdbSpec } from '../src/exports/tsdb/spec.ts';
import type { ExportBatch } from '../src/exports/shared/sink.ts';
import { startInflux } from '../test/influx.ts';
import { batchOf, openSink, repoRow, testConfig } from '../test/sink-harness.ts';
import { compareSinkToDirect, type Pass } from './exports-compare.ts';
import { fmtInt, type BenchContext, type WorkloadResult } from './lib.ts';

const POINTS = Number(process.env.BENCH_TSDB_POINTS ?? 200_000);
const BATCH = 20_000;
const REQUEST_LINES = 5000;
const TARGET_RATIO = 0.8;

const SCHEMA = [
  { key: 'host', valtype: 'string' },
  { key: 'region', valtype: 'string' },
  { key: 'status', valtype: 'long' },
  { key: 'bytes', valtype: 'long' },
  { key: 'latency', valtype: 'float' },
  { key: 'cached', valtype: 'boolean' },
  { key: 'path', valtype: 'string' },
];
const SPEC = {
  series: 'requests',
  tags: { host: '#host', region: '#region' },
  fields: { status: '#status', bytes: '#bytes', latency: '#latency', cached: '#cached', path: '#path' },
};

export async function runTsdbBench(ctx: BenchContext): Promise<WorkloadResult> {
  const influx = await startInflux();
  ctx.cleanup.add('stop influxd', () => influx.stop());
  const config = testConfig({ tsdbUrl: influx.url });
  const repo = repoRow('src', SCHEMA);
  const t0 = Date.UTC(2026, 10, 30);
  const regions = ['east', 'west', 'north', 'south'];
  const points = Array.from({ length: POINTS }, (_, i) => ({
    host: `web-${i % 100}`,
    region: regions[i % 4],
    status: i % 17 === 0 ? 500 : 200,
    bytes: 1000 + (i % 5000),
    latency: (i % 1000) / 7,
    cached: i % 3 === 0,
    path: `/api/v1/items/${i % 997}?q=a b`,
  }));
  const times = points.map((_, i) => t0 + Math.floor(i / 10));
  // Stored lines once; each sink pass decodes them afresh, as the engine's batches do.
  const stored = Array.from({ length: Math.ceil(POINTS / BATCH) }, (_, b) => batchOf(repo, points.slice(b * BATCH, (b + 1) * BATCH), b * BATCH, times.slice(b * BATCH, (b + 1) * BATCH)));
  const fresh = (b: ExportBatch): ExportBatch => batchOf(repo, b.points(), b.from, b.times);
  // The direct baseline posts exactly the bytes the sink sends, in the same request sizes.
  const plan = compileTsdbSpec({ destRepoName: 'x', ...SPEC }, repo.schema, config);
  const prebuilt: string[] = [];
  for (const b of stored) {
    const { lines } = encodeRecords(plan, b.points(), b.from, b.times);
    for (let i = 0; i < lines.length; i += REQUEST_LINES) prebuilt.push(lines.slice(i, i + REQUEST_LINES).join('\n'));
  }
  const pool = new Pool(influx.url, { connections: 4 });
  ctx.cleanup.add('close pool', () => pool.close());

  let pass = 0;
  // Each pass checks its count and drops its database, so that no pass pays
  // influxd's background compaction of an earlier pass's data.
  const dropAfter = async (db: string): Promise<void> => {
    const rows = await influx.rows('SELECT count(bytes) FROM requests', db);
    if (Number(rows[0]?.count) !== POINTS) throw new Error(`influxd holds ${String(rows[0]?.count)} points in ${db}, expected ${POINTS}`);
    await influx.query(`DROP DATABASE "${db}"`);
  };
  const sinkPass: Pass = async (timed) => {
    const batches = stored.map(fresh);
    const db = `s${pass++}`;
    const sink = await openSink(tsdbKind, { destRepoName: db, ...SPEC }, repo, config);
    const signal = new AbortController().signal;
    await timed(async () => {
      for (const b of batches) {
        const r = await sink.deliver(b, signal);
        if (r.rejected.length) throw new Error(`sink rejected ${r.rejected.length} records: ${r.rejected[0]?.error}`);
      }
    });
    await sink.close();
    await dropAfter(db);
  };
  const directPass: Pass = async (timed) => {
    const db = `d${pass++}`;
    await influx.query(`CREATE DATABASE "${db}"`);
    await timed(async () => {
      for (const body of prebuilt) {
        const res = await pool.request({ method: 'POST', path: `/write?db=${db}&precision=ns`, body });
        const text = await res.body.text();
        if (res.statusCode !== 204) throw new Error(`influx ${res.statusCode}: ${text}`);
      }
    });
    await dropAfter(db);
  };
  const c = await compareSinkToDirect(ctx, POINTS, sinkPass, directPass);
  return {
    tables: [{
      title: `${fmtInt(POINTS)} points (2 tags, 5 fields) into influxd, median of ${c.rounds} alternating passes`,
      columns: ['path', 'points/s', 'ms per pass', 'node CPU µs/point'],
      rows: [
        ['tsdb sink (convert + POST)', fmtInt(c.sink.rate), fmtInt(c.sink.medianMs), c.sink.medianCpuUs.toFixed(2)],
        ['direct POST of prebuilt lines', fmtInt(c.direct.rate), fmtInt(c.direct.medianMs), c.direct.medianCpuUs.toFixed(2)],
      ],
    }],
    checks: [c.check('exports-tsdb: sink points/s / direct line-protocol POST points/s', 'points', TARGET_RATIO)],
    json: { points: POINTS, sink: c.sink, direct: c.direct, ratio: c.ratio },
  };
}
