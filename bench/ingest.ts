/**
 * The ingest workload: ~1 MB bodies of ~90-byte points over keep-alive
 * connections against (1) a bare node:http baseline with the same fsync group
 * commit and (2) the real server with its durable default (PIPELINE_FSYNC=always),
 * then the cost of reading the ingested repo back from offset 0.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ingestTables, report, roundRatios, median } from './ingest-report.ts';
import { fmtInt, fmtNum, procStatusKb, tempDir, type BenchContext, type Workload } from './lib.ts';
import { combine, runLoad, type LoadOptions, type LoadPhase, type LoadResult } from './load.ts';
import { makeBodies, SCHEMA, type Body } from './points.ts';
import { formatSummary, summarise } from './profile.ts';
import { readBack } from './readback.ts';
import { ACCOUNT, buildOnce, freePort, serverEnv, signedHeaders, signedJson, startChild, type RunningChild } from './server.ts';

const REPO = 'bench_ingest';
const DATA_PATH = `/v2/repos/${REPO}/data`;
const BODY_BYTES = 1 << 20;
const BODY_COUNT = 4;
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

/** A SQL transform reading the ingested repo (the ingest-transform workload), run by the server's scheduler. */
const TRANSFORM = { name: 'by_host', dest: `${REPO}_by_host`, body: { mode: 'sql', code: `select host, count(*) as n, avg(latency) as lat from ${REPO} group by host`, interval: '5s' } };
const TRANSFORM_PATH = `/v2/repos/${REPO}/transforms/${TRANSFORM.name}`;

/** Set-up after the repo exists: true = the SQL transform below; a function = the caller's own (e.g. exports). */
type Setup = boolean | ((url: string) => Promise<void>);

async function startServer(ctx: BenchContext, dataDir: string, withTransform: Setup): Promise<RunningChild> {
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
  if (withTransform === true) await signedJson(child.url, 'POST', `${TRANSFORM_PATH}/to/${TRANSFORM.dest}`, TRANSFORM.body);
  else if (typeof withTransform === 'function') await withTransform(child.url);
  return child;
}

interface IngestRuns {
  server: LoadResult;
  baseline: LoadResult;
  profile?: string[];
  /** The transform's status when the load ended (ingest-transform only). */
  transform?: { status: Record<string, unknown>; afterS: number };
}

/**
 * Both targets run side by side (the idle one costs nothing) and take turns
 * in rounds, A B B A ..., so a neighbour's load on this shared machine hits
 * both alike instead of whichever happened to run second.
 */
export async function runIngest(ctx: BenchContext, bodies: Body[], dataDir: string, withTransform: Setup = false, afterLoad?: (url: string) => Promise<void>): Promise<IngestRuns> {
  const baseline = await startBaseline(ctx);
  let server: RunningChild | undefined;
  let result: IngestRuns;
  try {
    server = await startServer(ctx, dataDir, withTransform);
    const { rounds, durationS, warmupS } = ctx.opts;
    const phases = { server: [] as LoadPhase[], baseline: [] as LoadPhase[] };
    const rss = (pid: number): number => (procStatusKb(pid, 'VmRSS') ?? NaN) / 1024;
    const idleRss = { server: rss(server.pid), baseline: rss(baseline.pid) };
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
    result = {
      server: combine(phases.server, server.pid, idleRss.server),
      baseline: combine(phases.baseline, baseline.pid, idleRss.baseline),
    };
    if (withTransform === true) result.transform = await transformCatchUp(server.url);
    if (afterLoad) await afterLoad(server.url);
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

/** Waits (up to 60 s) for the transform to have no lag, then returns its status and how long that took. */
async function transformCatchUp(url: string): Promise<{ status: Record<string, unknown>; afterS: number }> {
  const t0 = performance.now();
  for (;;) {
    const t = JSON.parse(await signedJson(url, 'GET', TRANSFORM_PATH)) as { status: Record<string, unknown> & { lag: { points: number } } };
    const afterS = (performance.now() - t0) / 1000;
    if (t.status.lag.points === 0 || afterS > 60) return { status: t.status, afterS };
    await new Promise((r) => setTimeout(r, 250));
  }
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

/**
 * ingest-transform: the ingest workload against a repo that a SQL transform
 * (interval 5s) reads, so the stage feeder and the runs share the 2 cores with
 * ingest. No target of its own: it shows what a transform costs ingest, and
 * whether the transform keeps up.
 */
export const ingestTransformWorkload: Workload = {
  name: 'ingest-transform',
  description: 'the ingest workload into a repo read by a SQL group-by transform (5s): ingest vs baseline, transform catch-up',
  async run(ctx) {
    const bodies = makeBodies(BODY_COUNT, BODY_BYTES);
    buildOnce(ctx);
    const dataDir = tempDir(ctx.cleanup, 'server');
    const runs = await runIngest(ctx, bodies, dataDir, true);
    const { server, baseline, transform } = runs;
    const st = (transform?.status ?? {}) as { total?: { in: number; out: number }; lag?: { points: number }; lastError?: string | null; lastRun?: unknown };
    const caughtUp = st.lag?.points === 0;
    const tables = ingestTables(server, baseline);
    const notes = [
      `Transform \`${TRANSFORM.body.code}\` every 5 s. After the load: ${caughtUp ? `caught up ${fmtNum(transform?.afterS ?? 0)} s after the last push` : `still ${fmtInt(st.lag?.points ?? 0)} points behind after 60 s`};`,
      `total in ${fmtInt(st.total?.in ?? 0)} of ${fmtInt(server.ackedPoints)} acknowledged points, last error ${st.lastError ?? 'none'}, last run ${JSON.stringify(st.lastRun)}.`,
      ...(runs.profile ?? []),
    ];
    return {
      tables,
      checks: [],
      notes,
      json: { server, baseline, ratio: server.pointsPerSec / baseline.pointsPerSec, transform },
    };
  },
};

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
