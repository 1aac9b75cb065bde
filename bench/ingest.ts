/**
 * The ingest workload: ~1 MB bodies of ~90-byte points over keep-alive
 * connections against (1) a bare node:http baseline with the same fsync group
 * commit and (2) the real server with its durable default (PIPELINE_FSYNC=always),
 * then the cost of reading the ingested repo back from offset 0.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fmtInt, fmtNum, tempDir, type BenchContext, type Check, type ReportTable, type Workload, type WorkloadResult } from './lib.ts';
import { combine, runLoad, type LoadOptions, type LoadPhase, type LoadResult } from './load.ts';
import { makeBodies, SCHEMA, type Body } from './points.ts';
import { formatSummary, summarise } from './profile.ts';
import { readBack, type ReadBackResult } from './readback.ts';
import { ACCOUNT, buildOnce, freePort, serverEnv, signedHeaders, signedJson, startChild, type RunningChild } from './server.ts';

const REPO = 'bench_ingest';
const DATA_PATH = `/v2/repos/${REPO}/data`;
const BODY_BYTES = 1 << 20;
const BODY_COUNT = 4;
/** Targets from the issue. */
const MIN_RATIO = 0.8;
const MIN_POINTS_PER_SEC = 500_000;
/** Warm-up of every phase after a target's first. */
const LATER_WARMUP_S = 1;
/** Each read-back pass stops after this long, so a slow reader cannot stall the run. */
const READ_CAP_S = 20;

/** Node flags writing a CPU profile named `name` into this run's profile dir, when profiling. */
function profFlags(ctx: BenchContext, name: string): string[] {
  const dir = profRunDir(ctx);
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
}

let runDir: string | undefined;
function profRunDir(ctx: BenchContext): string | undefined {
  if (!ctx.opts.cpuProfDir) return undefined;
  runDir ??= path.join(ctx.opts.cpuProfDir, `ingest-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  return runDir;
}

async function startBaseline(ctx: BenchContext): Promise<RunningChild> {
  const dir = tempDir(ctx.cleanup, 'baseline');
  const port = await freePort();
  return startChild(ctx, {
    name: 'baseline',
    entry: buildOnce(ctx).baseline,
    nodeFlags: profFlags(ctx, 'baseline'),
    env: { BASELINE_PORT: String(port), BASELINE_FILE: path.join(dir, 'points.log') },
    port,
    healthPath: '/health',
  });
}

async function startServer(ctx: BenchContext, dataDir: string): Promise<RunningChild> {
  const port = await freePort();
  const child = await startChild(ctx, {
    name: 'server',
    entry: buildOnce(ctx).server,
    nodeFlags: profFlags(ctx, 'server'),
    env: serverEnv(dataDir, port),
    port,
    healthPath: '/health',
  });
  await signedJson(child.url, 'POST', `/v2/repos/${REPO}`, { region: 'nb', schema: SCHEMA });
  return child;
}

interface IngestRuns {
  server: LoadResult;
  baseline: LoadResult;
  profile?: string[];
}

/**
 * Both targets run side by side (the idle one costs nothing) and take turns
 * in rounds, A B B A ..., so a neighbour's load on this shared machine hits
 * both alike instead of whichever happened to run second.
 */
async function runIngest(ctx: BenchContext, bodies: Body[], dataDir: string): Promise<IngestRuns> {
  const baseline = await startBaseline(ctx);
  let server: RunningChild | undefined;
  let result: IngestRuns;
  try {
    server = await startServer(ctx, dataDir);
    const { rounds, durationS, warmupS } = ctx.opts;
    const phases = { server: [] as LoadPhase[], baseline: [] as LoadPhase[] };
    const phase = async (which: 'server' | 'baseline', child: RunningChild): Promise<void> => {
      // The first phase warms the JIT; later ones only need connections and a steady state again.
      const warm = phases[which].length === 0 ? warmupS : Math.min(warmupS, LATER_WARMUP_S);
      ctx.log(`${which} (pid ${child.pid}): ${warm} s warm-up + ${fmtNum(durationS / rounds)} s load`);
      const opts = { ...loadOpts(ctx, bodies, child.url, child.pid), durationS: durationS / rounds, warmupS: warm };
      // The baseline accepts any path; it gets the same signed headers so the client does the same work.
      phases[which].push(await runLoad(which === 'baseline' ? { ...opts, path: '/ingest' } : opts));
    };
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['baseline', 'server'] as const) : (['server', 'baseline'] as const);
      for (const which of order) await phase(which, which === 'server' ? server : baseline);
    }
    result = { server: combine(phases.server, server.pid), baseline: combine(phases.baseline, baseline.pid) };
  } finally {
    await baseline.stop();
    const code = await server?.stop();
    if (code !== undefined && code !== 0) ctx.log(`warning: server exited with ${code}:\n${server?.output() ?? ''}`);
  }
  const dir = profRunDir(ctx);
  if (dir) {
    result.profile = [];
    for (const which of ['server', 'baseline'] as const) {
      const file = path.join(dir, `${which}.cpuprofile`);
      if (!existsSync(file)) {
        result.profile.push(`no CPU profile of the ${which} was written (${file})`);
        continue;
      }
      // Whole-life profiles: per-point costs divide by every point it acknowledged, warm-ups included.
      result.profile.push('', `CPU profile of the ${which}: ${file}`, ...formatSummary(summarise(file, ctx.root), result[which].ackedPoints));
    }
  }
  return result;
}

function loadOpts(ctx: BenchContext, bodies: Body[], url: string, pid: number): LoadOptions {
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

function ratio(a: number, b: number): string {
  return fmtNum(a / b, 2);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** server/baseline points/s of each round (phases are paired by index). */
function roundRatios(server: LoadResult, baseline: LoadResult): number[] {
  return server.phasePointsPerSec.map((v, i) => v / (baseline.phasePointsPerSec[i] ?? NaN));
}

function ingestTables(server: LoadResult, baseline: LoadResult): ReportTable[] {
  const rows = (name: string, r: LoadResult): string[] => [
    name, fmtInt(r.pointsPerSec), fmtNum(r.mbPerSec), fmtNum(r.p50Ms), fmtNum(r.p99Ms), fmtNum(r.peakRssMiB, 0), fmtInt(r.requests),
  ];
  const cpuRow = (name: string, r: LoadResult): string[] => [
    name, fmtNum(r.cpuUsPerPoint, 2), fmtNum(r.cpuCores, 2), fmtNum(r.mainThreadCores, 2), fmtNum(r.mainRunqWait, 2),
    fmtNum(r.clientCores, 2), fmtNum(r.otherCores, 2),
  ];
  const perRound = roundRatios(server, baseline);
  return [
    {
      title: 'ingest: ~90-byte points in ~1 MB bodies, 8 keep-alive connections, fsync group commit before 200',
      columns: ['', 'points/s', 'MB/s', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'requests'],
      rows: [
        rows('server', server),
        rows('baseline', baseline),
        [
          'server/baseline', ratio(server.pointsPerSec, baseline.pointsPerSec), ratio(server.mbPerSec, baseline.mbPerSec),
          ratio(server.p50Ms, baseline.p50Ms), ratio(server.p99Ms, baseline.p99Ms), ratio(server.peakRssMiB, baseline.peakRssMiB), '',
        ],
      ],
    },
    {
      // Per-point CPU barely moves when neighbours steal cores; points/s does. "runq" = main thread ready but no core free.
      title: 'ingest CPU (cores = CPU seconds per wall second in the measured windows)',
      columns: ['', 'CPU us/point', 'process cores', 'main thread', 'main runq wait', 'client cores', 'other load cores'],
      rows: [cpuRow('server', server), cpuRow('baseline', baseline), ['server/baseline', ratio(server.cpuUsPerPoint, baseline.cpuUsPerPoint), '', '', '', '', '']],
    },
    {
      title: `ingest rounds (alternating; median server/baseline ${fmtNum(median(perRound), 2)})`,
      columns: ['round', 'server points/s', 'baseline points/s', 'server/baseline', 'other load (server phase)', 'other load (baseline phase)'],
      rows: perRound.map((r, i) => [
        String(i + 1), fmtInt(server.phasePointsPerSec[i] ?? NaN), fmtInt(baseline.phasePointsPerSec[i] ?? NaN), fmtNum(r, 2),
        fmtNum(server.phaseOtherCores[i] ?? NaN, 2), fmtNum(baseline.phaseOtherCores[i] ?? NaN, 2),
      ]),
    },
  ];
}

function report(server: LoadResult, baseline: LoadResult, rb: ReadBackResult): Pick<WorkloadResult, 'tables' | 'checks'> {
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
    { name: 'ingest vs baseline (points/s, whole run)', target: `>= ${MIN_RATIO}`, actual: fmtNum(r, 2), ok: r >= MIN_RATIO },
    { name: 'ingest points/s', target: `>= ${fmtInt(MIN_POINTS_PER_SEC)}`, actual: fmtInt(server.pointsPerSec), ok: server.pointsPerSec >= MIN_POINTS_PER_SEC },
    // Every acknowledged point must be readable after a clean stop; a miss means lost data, not slowness.
    { name: 'acknowledged points readable', target: fmtInt(server.ackedPoints), actual: fmtInt(rb.points), ok: rb.points === server.ackedPoints },
  ];
  return { tables: [...ingestTables(server, baseline), read], checks };
}

export const ingestWorkload: Workload = {
  name: 'ingest',
  description: 'push throughput/latency/RSS vs a bare node:http + group-commit baseline, then read-back from offset 0',
  async run(ctx) {
    const bodies = makeBodies(BODY_COUNT, BODY_BYTES);
    const perBody = bodies.reduce((s, b) => s + b.bytes.length, 0) / bodies.reduce((s, b) => s + b.points, 0);
    ctx.log(`${bodies.length} bodies of ~${fmtInt(bodies[0]!.bytes.length)} bytes, ${fmtNum(perBody)} bytes/point`);
    buildOnce(ctx);
    const dataDir = tempDir(ctx.cleanup, 'server');
    const runs = await runIngest(ctx, bodies, dataDir);
    const { server, baseline } = runs;
    ctx.log('reading the repo back');
    const rb = await readBack(dataDir, ACCOUNT, REPO, READ_CAP_S);
    const { tables, checks } = report(server, baseline, rb);
    return {
      tables,
      checks,
      notes: runs.profile,
      json: {
        bodies: { count: bodies.length, bytes: bodies[0]!.bytes.length, pointsPerBody: bodies[0]!.points, bytesPerPoint: perBody },
        server,
        baseline,
        ratio: {
          pointsPerSec: server.pointsPerSec / baseline.pointsPerSec,
          p50: server.p50Ms / baseline.p50Ms,
          p99: server.p99Ms / baseline.p99Ms,
          peakRss: server.peakRssMiB / baseline.peakRssMiB,
          cpuUsPerPoint: server.cpuUsPerPoint / baseline.cpuUsPerPoint,
          perRound: roundRatios(server, baseline),
          medianOfRounds: median(roundRatios(server, baseline)),
        },
        readBack: rb,
      },
    };
  },
};
