/**
 * The ingest workload: ~1 MB bodies of ~90-byte points over keep-alive
 * connections against (1) a bare node:http baseline with the same fsync group
 * commit and (2) the real server with its durable default (PIPELINE_FSYNC=always),
 * then the cost of reading the ingested repo back from offset 0.
 */
import path from 'node:path';
import { fmtInt, fmtNum, tempDir, type BenchContext, type Check, type ReportTable, type Workload, type WorkloadResult } from './lib.ts';
import { runLoad, type LoadResult } from './load.ts';
import { makeBodies, SCHEMA, type Body } from './points.ts';
import { formatSummary, newestProfile, summarise } from './profile.ts';
import { readBack, type ReadBackResult } from './readback.ts';
import { ACCOUNT, buildOnce, freePort, serverEnv, signedHeaders, signedJson, startChild } from './server.ts';

const REPO = 'bench_ingest';
const DATA_PATH = `/v2/repos/${REPO}/data`;
const BODY_BYTES = 1 << 20;
const BODY_COUNT = 4;
/** Targets from the issue. */
const MIN_RATIO = 0.8;
const MIN_POINTS_PER_SEC = 500_000;
/** Each read-back pass stops after this long, so a slow reader cannot stall the run. */
const READ_CAP_S = 20;

async function runBaseline(ctx: BenchContext, bodies: Body[]): Promise<LoadResult> {
  const dir = tempDir(ctx.cleanup, 'baseline');
  const port = await freePort();
  const child = await startChild(ctx, {
    name: 'baseline',
    entry: buildOnce(ctx).baseline,
    env: { BASELINE_PORT: String(port), BASELINE_FILE: path.join(dir, 'points.log') },
    port,
    healthPath: '/health',
  });
  try {
    ctx.log(`baseline pid ${child.pid}: ${ctx.opts.warmupS} s warm-up + ${ctx.opts.durationS} s load`);
    // Same headers as for the server (signed) so the client does the same work.
    return await runLoad({ ...loadOpts(ctx, bodies, child.url, child.pid), path: '/ingest' });
  } finally {
    await child.stop();
  }
}

function loadOpts(ctx: BenchContext, bodies: Body[], url: string, pid: number) {
  return {
    url,
    path: DATA_PATH,
    bodies,
    headers: () => signedHeaders('POST', DATA_PATH, 'text/plain'),
    connections: ctx.opts.connections,
    warmupS: ctx.opts.warmupS,
    durationS: ctx.opts.durationS,
    pid,
  };
}

interface ServerRun {
  load: LoadResult;
  dataDir: string;
  profile?: string[];
}

async function runServer(ctx: BenchContext, bodies: Body[]): Promise<ServerRun> {
  const dataDir = tempDir(ctx.cleanup, 'server');
  const port = await freePort();
  const profDir = ctx.opts.cpuProfDir;
  const child = await startChild(ctx, {
    name: 'server',
    entry: buildOnce(ctx).server,
    nodeFlags: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    env: serverEnv(dataDir, port),
    port,
    healthPath: '/health',
  });
  let load: LoadResult;
  try {
    await signedJson(child.url, 'POST', `/v2/repos/${REPO}`, { region: 'nb', schema: SCHEMA });
    ctx.log(`server pid ${child.pid}: ${ctx.opts.warmupS} s warm-up + ${ctx.opts.durationS} s load`);
    load = await runLoad(loadOpts(ctx, bodies, child.url, child.pid));
  } finally {
    const code = await child.stop();
    if (code !== 0) ctx.log(`warning: server exited with ${code}:\n${child.output()}`);
  }
  const run: ServerRun = { load, dataDir };
  const file = profDir ? newestProfile(profDir) : undefined;
  if (file) run.profile = [`cpu profile of the server: ${file}`, ...formatSummary(summarise(file, ctx.root))];
  return run;
}

function loadRow(name: string, r: LoadResult): string[] {
  return [
    name, fmtInt(r.pointsPerSec), fmtNum(r.mbPerSec), fmtNum(r.p50Ms), fmtNum(r.p99Ms), fmtNum(r.peakRssMiB, 0),
    fmtNum(r.cpuCores, 2), fmtNum(r.mainThreadCores, 2), fmtNum(r.cpuUsPerPoint, 2), fmtNum(r.clientCores, 2),
  ];
}

function ratio(a: number, b: number): string {
  return fmtNum(a / b, 2);
}

function report(server: LoadResult, baseline: LoadResult, rb: ReadBackResult): Pick<WorkloadResult, 'tables' | 'checks'> {
  const ingest: ReportTable = {
    title: 'ingest: ~90-byte points in ~1 MB bodies, fsync group commit before 200',
    columns: ['', 'points/s', 'MB/s', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'CPU cores', 'main thread', 'CPU us/point', 'client cores'],
    rows: [
      loadRow('server', server),
      loadRow('baseline', baseline),
      [
        'server/baseline', ratio(server.pointsPerSec, baseline.pointsPerSec), ratio(server.mbPerSec, baseline.mbPerSec),
        ratio(server.p50Ms, baseline.p50Ms), ratio(server.p99Ms, baseline.p99Ms), ratio(server.peakRssMiB, baseline.peakRssMiB),
        ratio(server.cpuCores, baseline.cpuCores), ratio(server.mainThreadCores, baseline.mainThreadCores),
        ratio(server.cpuUsPerPoint, baseline.cpuUsPerPoint), '',
      ],
    ],
  };
  const read: ReportTable = {
    title: `read-back: ${fmtInt(rb.points)} points (${fmtNum(rb.bytesOnDisk / 1e6)} MB on disk) from offset 0, batches of 10,000, log opened in ${fmtNum(rb.openMs)} ms`,
    columns: ['', 'points/s', 'points', 'seconds', 'complete'],
    rows: [
      ['raw (wire lines)', fmtInt(rb.raw.pointsPerSec), fmtInt(rb.raw.points), fmtNum(rb.raw.seconds, 2), rb.raw.capped ? 'no (time cap)' : 'yes'],
      ['decoded (decodeLine)', fmtInt(rb.decoded.pointsPerSec), fmtInt(rb.decoded.points), fmtNum(rb.decoded.seconds, 2), rb.decoded.capped ? 'no (time cap)' : 'yes'],
    ],
  };
  const r = server.pointsPerSec / baseline.pointsPerSec;
  const checks: Check[] = [
    { name: 'ingest vs baseline (points/s)', target: `>= ${MIN_RATIO}`, actual: fmtNum(r, 2), ok: r >= MIN_RATIO },
    { name: 'ingest points/s', target: `>= ${fmtInt(MIN_POINTS_PER_SEC)}`, actual: fmtInt(server.pointsPerSec), ok: server.pointsPerSec >= MIN_POINTS_PER_SEC },
    // Every acknowledged point must be readable after a clean stop; a miss means lost data, not slowness.
    { name: 'acknowledged points readable', target: fmtInt(server.ackedPoints), actual: fmtInt(rb.points), ok: rb.points === server.ackedPoints },
  ];
  return { tables: [ingest, read], checks };
}

export const ingestWorkload: Workload = {
  name: 'ingest',
  description: 'push throughput/latency/RSS vs a bare node:http + group-commit baseline, then read-back from offset 0',
  async run(ctx) {
    const bodies = makeBodies(BODY_COUNT, BODY_BYTES);
    const perBody = bodies.reduce((s, b) => s + b.bytes.length, 0) / bodies.reduce((s, b) => s + b.points, 0);
    ctx.log(`${bodies.length} bodies of ~${fmtInt(bodies[0]!.bytes.length)} bytes, ${fmtNum(perBody)} bytes/point`);
    buildOnce(ctx);
    const baseline = await runBaseline(ctx, bodies);
    const server = await runServer(ctx, bodies);
    ctx.log('reading the repo back');
    const rb = await readBack(server.dataDir, ACCOUNT, REPO, READ_CAP_S);
    const { tables, checks } = report(server.load, baseline, rb);
    return {
      tables,
      checks,
      notes: server.profile,
      json: {
        bodies: { count: bodies.length, bytes: bodies[0]!.bytes.length, pointsPerBody: bodies[0]!.points, bytesPerPoint: perBody },
        server: server.load,
        baseline,
        ratio: {
          pointsPerSec: server.load.pointsPerSec / baseline.pointsPerSec,
          p50: server.load.p50Ms / baseline.p50Ms,
          p99: server.load.p99Ms / baseline.p99Ms,
          peakRss: server.load.peakRssMiB / baseline.peakRssMiB,
          cpuUsPerPoint: server.load.cpuUsPerPoint / baseline.cpuUsPerPoint,
        },
        readBack: rb,
      },
    };
  },
};
