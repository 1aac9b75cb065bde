/**
 * health-load: the real server (child process) under 16 concurrent pushes of
 * 16 MB bodies, while a prober times GET /health and an unrelated 1,000-point
 * push on another repo. Run twice in the same bench: with parse workers
 * (PIPELINE_INGEST_WORKERS=auto, the default) and with validation on the main thread
 * (PIPELINE_INGEST_WORKERS=0, how the server worked before), each first idle
 * (the latency floor) and then under load.
 */
import { availableParallelism } from 'node:os';
import { request } from 'undici';
import { fmtInt, fmtNum, percentile, sleep, tempDir, type BenchContext, type Workload, type WorkloadResult } from './lib.ts';
import { makeBodies, SCHEMA } from './points.ts';
import { buildOnce, freePort, serverEnv, signedHeaders, signedJson, startChild } from './server.ts';

const PUSHERS = 16;
const BIG_BYTES = 16 * 1024 * 1024;
const PROBE_EVERY_MS = 50;
const LOAD_S = 15;
const IDLE_S = 3;
const TARGET_HEALTH_P99_MS = 100;
const TARGET_PUSH_P99_MS = 200;

interface Probe {
  health: number[];
  push: number[];
}

interface Phase {
  idle: Probe;
  load: Probe;
  bigPushes: number;
  bigFailures: number;
  bigMBps: number;
}

/** Times /health and, independently, a small push, each every PROBE_EVERY_MS until `until`. */
async function probe(url: string, small: Buffer, until: number): Promise<Probe> {
  const out: Probe = { health: [], push: [] };
  const smallPath = '/v2/repos/small/data';
  const loop = async (into: number[], once: () => Promise<void>): Promise<void> => {
    while (performance.now() < until) {
      const t0 = performance.now();
      await once();
      into.push(performance.now() - t0);
      await sleep(Math.max(0, PROBE_EVERY_MS - (performance.now() - t0)));
    }
  };
  await Promise.all([
    loop(out.health, async () => {
      const h = await request(`${url}/health`);
      await h.body.dump();
    }),
    loop(out.push, async () => {
      const p = await request(`${url}${smallPath}`, { method: 'POST', headers: signedHeaders('POST', smallPath, 'text/plain'), body: small });
      await p.body.dump();
      if (p.statusCode !== 200) throw new Error(`small push answered ${p.statusCode}`);
    }),
  ]);
  return out;
}

async function runPhase(ctx: BenchContext, workers: string, big: Buffer, small: Buffer): Promise<Phase> {
  const port = await freePort();
  const dir = tempDir(ctx.cleanup, `health-${workers}`);
  const child = await startChild(ctx, {
    name: `server (ingestWorkers=${workers})`,
    entry: buildOnce(ctx).server,
    env: serverEnv(dir, port, { PIPELINE_INGEST_WORKERS: workers, PIPELINE_MAX_BODY_SIZE: '17MB' }),
    port,
    healthPath: '/health',
  });
  try {
    await signedJson(child.url, 'POST', '/v2/repos/big', { region: 'nb', schema: SCHEMA });
    await signedJson(child.url, 'POST', '/v2/repos/small', { region: 'nb', schema: SCHEMA });
    const idle = await probe(child.url, small, performance.now() + IDLE_S * 1000);
    ctx.log(`ingestWorkers=${workers}: ${PUSHERS} pushers of ${fmtNum(big.length / 1048576)} MB for ${LOAD_S} s`);
    const until = performance.now() + LOAD_S * 1000;
    let pushes = 0;
    let failures = 0;
    const t0 = performance.now();
    const pusher = async (): Promise<void> => {
      while (performance.now() < until) {
        const res = await request(`${child.url}/v2/repos/big/data`, { method: 'POST', headers: signedHeaders('POST', '/v2/repos/big/data', 'text/plain'), body: big });
        await res.body.dump();
        if (res.statusCode === 200) pushes++;
        else failures++;
      }
    };
    const [load] = await Promise.all([probe(child.url, small, until), ...Array.from({ length: PUSHERS }, pusher)]);
    const seconds = (performance.now() - t0) / 1000;
    return { idle, load: load as Probe, bigPushes: pushes, bigFailures: failures, bigMBps: (pushes * big.length) / 1048576 / seconds };
  } finally {
    await child.stop();
  }
}

const stats = (v: number[]): { p50: number; p99: number; max: number; n: number } => {
  const s = [...v].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? NaN, n: s.length };
};

async function run(ctx: BenchContext): Promise<WorkloadResult> {
  const bodies = makeBodies(1, 1 << 20);
  const one = bodies[0]!.bytes;
  // 16 MB of whole lines: repeat the ~1 MB body.
  const parts: Buffer[] = [];
  let size = 0;
  while (size + one.length + 1 <= BIG_BYTES) {
    parts.push(one, Buffer.from('\n'));
    size += one.length + 1;
  }
  const big = Buffer.concat(parts);
  const smallLines = one.toString('utf8').split('\n').slice(0, 1000).join('\n');
  const small = Buffer.from(smallLines);
  const phases: Record<string, Phase> = {};
  phases.workers = await runPhase(ctx, 'auto', big, small);
  phases.mainThread = await runPhase(ctx, '0', big, small);
  const rows = Object.entries(phases).flatMap(([name, p]) => {
    const hi = stats(p.idle.health);
    const hl = stats(p.load.health);
    const pl = stats(p.load.push);
    return [[
      name === 'workers' ? `parse workers (auto: ${Math.max(1, availableParallelism() - 1)})` : 'main thread (0)',
      `${fmtNum(hi.p50)} / ${fmtNum(hi.p99)}`,
      `${fmtNum(hl.p50)} / ${fmtNum(hl.p99)} / ${fmtNum(hl.max)}`,
      `${fmtNum(pl.p50)} / ${fmtNum(pl.p99)} / ${fmtNum(pl.max)}`,
      `${fmtInt(p.bigPushes)} (${fmtNum(p.bigMBps)} MB/s)`,
      String(p.bigFailures),
    ]];
  });
  const w = phases.workers!;
  const healthP99 = stats(w.load.health).p99;
  const pushP99 = stats(w.load.push).p99;
  return {
    tables: [{
      title: `GET /health and a 1,000-point push on another repo (ms) while ${PUSHERS} clients push ${fmtNum(big.length / 1048576)} MB bodies`,
      columns: ['validation', 'health idle p50/p99', 'health loaded p50/p99/max', 'small push loaded p50/p99/max', '16 MB pushes', 'failed'],
      rows,
    }],
    checks: [
      { name: '/health p99 under 16 x 16 MB pushes (parse workers)', target: `<= ${TARGET_HEALTH_P99_MS} ms`, actual: `${fmtNum(healthP99)} ms`, ok: healthP99 <= TARGET_HEALTH_P99_MS },
      { name: '1,000-point push p99 under the same load (parse workers)', target: `<= ${TARGET_PUSH_P99_MS} ms`, actual: `${fmtNum(pushP99)} ms`, ok: pushP99 <= TARGET_PUSH_P99_MS },
    ],
    json: Object.fromEntries(Object.entries(phases).map(([k, p]) => [k, {
      idleHealth: stats(p.idle.health), loadHealth: stats(p.load.health), loadSmallPush: stats(p.load.push), bigPushes: p.bigPushes, bigFailures: p.bigFailures, bigMBps: p.bigMBps,
    }])),
  };
}

export const healthLoadWorkload: Workload = {
  name: 'health-load',
  description: `/health and a small push while ${PUSHERS} clients push 16 MB bodies, with and without parse workers`,
  run,
};
