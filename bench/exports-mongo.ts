/**
 * exports-mongo: records/s through the mongo sink (decode the stored lines,
 * build documents, unordered bulkWrite with the official driver) into the
 * MongoDB wire-protocol STAND-IN (its own process: no MongoDB server
 * installs here), against bulkWrite of the very same prebuilt documents
 * with the driver directly, in the same run. Passes alternate, each into a
 * fresh collection that is dropped afterwards. Target (issue 10): >= 0.7x.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { MongoClient, type AnyBulkWriteOperation } from 'mongodb';
import { operation } from '../src/exports/mongo/convert.ts';
import { mongoKind, mongoPaths } from '../src/exports/mongo/sink.ts';
import { compileMongoSpec } from '../src/exports/mongo/spec.ts';
import { OutboundPolicy } from '../src/exports/shared/outbound.ts';
import type { ExportBatch } from '../src/exports/shared/sink.ts';
import { batchOf, openSink, repoRow, testConfig } from '../test/sink-harness.ts';
import { compareSinkToDirect, type Pass } from './exports-compare.ts';
import { fmtInt, type BenchContext, type WorkloadResult } from './lib.ts';

const RECORDS = Number(process.env.BENCH_MONGO_RECORDS ?? 100_000);
const BATCH = 20_000;
const TARGET_RATIO = 0.7;
const SCHEMA = [
  { key: 'user', valtype: 'string' },
  { key: 'status', valtype: 'long' },
  { key: 'bytes', valtype: 'long' },
  { key: 'latency', valtype: 'float' },
  { key: 'at', valtype: 'date' },
  { key: 'path', valtype: 'string' },
];

async function startStandin(ctx: BenchContext): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ctx.root, 'test/fixtures/mongo-standin-main.ts')], { cwd: ctx.root, stdio: ['ignore', 'pipe', 'inherit'] });
  const kill = ctx.cleanup.addSync(() => child.kill('SIGKILL'));
  ctx.cleanup.add('stop the mongo stand-in', kill);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`mongo stand-in exited (${code}): ${out}`)));
  });
}

export async function runMongoBench(ctx: BenchContext): Promise<WorkloadResult> {
  const host = await startStandin(ctx);
  const config = testConfig();
  const repo = repoRow('src', SCHEMA);
  const t0 = Date.UTC(2026, 10, 30);
  const points = Array.from({ length: RECORDS }, (_, i) => ({
    user: `user-${i % 1000}`,
    status: i % 17 === 0 ? 500 : 200,
    bytes: 1000 + (i % 5000),
    latency: (i % 1000) / 7,
    at: new Date(t0 + i).toISOString(),
    path: `/api/v1/items/${i % 997}`,
  }));
  const stored = Array.from({ length: Math.ceil(RECORDS / BATCH) }, (_, b) => batchOf(repo, points.slice(b * BATCH, (b + 1) * BATCH), b * BATCH));
  const fresh = (b: ExportBatch): ExportBatch => batchOf(repo, b.points(), b.from, b.times);
  const spec = { host, dbName: 'bench', mode: 'INSERT' };
  // The direct baseline writes exactly the documents the sink writes (same _id, same BSON types).
  const plan = compileMongoSpec({ ...spec, collName: 'x' }, repo.schema, new OutboundPolicy(config.exportOutbound));
  const prebuilt: AnyBulkWriteOperation[][] = stored.map((b) => b.points().map((p, i) => operation(plan, repo.schema, p, b.from + i, { derivedId: (o) => `alice/src/bench/0:${o}` }).op));
  const client = new MongoClient(`mongodb://${host}/`, { maxPoolSize: 4 });
  ctx.cleanup.add('close the direct client', () => client.close());

  let pass = 0;
  const drop = async (coll: string): Promise<void> => {
    const n = await client.db('bench').collection(coll).estimatedDocumentCount();
    if (n !== RECORDS) throw new Error(`stand-in holds ${n} documents in ${coll}, expected ${RECORDS}`);
    await client.db('bench').collection(coll).drop();
  };
  const sinkPass: Pass = async (timed) => {
    const coll = `s${pass++}`;
    const batches = stored.map(fresh);
    const sink = await openSink(mongoKind, { ...spec, collName: coll }, repo, config, 'bench');
    await new Promise((r) => setTimeout(r, 50)); // the sink connects on creation, as while the engine reads its first batch
    const signal = new AbortController().signal;
    await timed(async () => {
      for (const b of batches) {
        const r = await sink.deliver(b, signal);
        if (r.rejected.length) throw new Error(`sink rejected ${r.rejected.length}: ${r.rejected[0]?.error}`);
      }
    });
    await sink.close();
    await drop(coll);
  };
  const directPass: Pass = async (timed) => {
    const coll = client.db('bench').collection(`d${pass++}`);
    await timed(async () => {
      for (const ops of prebuilt) await coll.bulkWrite(ops, { ordered: false });
    });
    await drop(coll.collectionName);
  };
  const c = await compareSinkToDirect(ctx, RECORDS, sinkPass, directPass);
  // The general path (decodeLine + operation), against its own direct passes in the same run.
  mongoPaths.fast = false;
  const g = await compareSinkToDirect(ctx, RECORDS, sinkPass, directPass).finally(() => (mongoPaths.fast = true));
  return {
    tables: [{
      title: `${fmtInt(RECORDS)} records (6 fields) INSERTed into the MongoDB wire-protocol stand-in, median of ${c.rounds} alternating passes`,
      columns: ['path', 'records/s', 'ms per pass', 'node CPU µs/record', 'vs its direct'],
      rows: [
        ['mongo sink (documents from stored lines + bulkWrite)', fmtInt(c.sink.rate), fmtInt(c.sink.medianMs), c.sink.medianCpuUs.toFixed(2), c.ratio.toFixed(3)],
        ['direct bulkWrite of prebuilt documents', fmtInt(c.direct.rate), fmtInt(c.direct.medianMs), c.direct.medianCpuUs.toFixed(2), '1'],
        ['mongo sink, general path (decodeLine + operation)', fmtInt(g.sink.rate), fmtInt(g.sink.medianMs), g.sink.medianCpuUs.toFixed(2), g.ratio.toFixed(3)],
        ['direct bulkWrite, passes alternating with the general path', fmtInt(g.direct.rate), fmtInt(g.direct.medianMs), g.direct.medianCpuUs.toFixed(2), '1'],
      ],
    }],
    checks: [c.check('exports-mongo: sink records/s / direct bulkWrite records/s', 'records', TARGET_RATIO)],
    json: { records: RECORDS, sink: c.sink, direct: c.direct, ratio: c.ratio, general: { sink: g.sink, direct: g.direct, ratio: g.ratio } },
  };
}
