/**
 * Closed-loop HTTP load generator: N keep-alive connections (undici Pool,
 * pipelining 1), each sending the next pre-built body as soon as its previous
 * request is answered, for a warm-up plus a measured window. Also samples the
 * target process's CPU time and peak RSS from /proc.
 *
 * A workload may run several phases against the same target (alternating
 * with another target, so a noisy neighbour hurts both alike) and combine
 * them with `combine`.
 */
import { Pool } from 'undici';
import { machineBusySeconds, percentile, procCpuSeconds, procStatusKb, threadSchedSeconds } from './lib.ts';
import type { Body } from './points.ts';

export interface LoadOptions {
  url: string;
  path: string;
  bodies: readonly Body[];
  /** Headers for one request (called per request so signatures carry a fresh Date). */
  headers: () => Record<string, string>;
  connections: number;
  warmupS: number;
  durationS: number;
  /** Process whose CPU time and peak RSS are reported. */
  pid: number;
}

/** Raw measurements of one phase. */
export interface LoadPhase {
  latencies: number[];
  points: number;
  bytes: number;
  seconds: number;
  /** Points acknowledged during the whole phase, warm-up included. */
  ackedPoints: number;
  /** CPU seconds in the window: target process, its main thread, this process (the client). */
  cpu: number;
  mainCpu: number;
  clientCpu: number;
  /** Seconds the target's main thread was runnable but waiting for a core. */
  mainWait: number;
  /** CPU seconds used by everything else on the machine (noise). */
  otherCpu: number;
}

export interface LoadResult {
  /** Points acknowledged over all phases, warm-ups included (for the durability check). */
  ackedPoints: number;
  requests: number;
  points: number;
  bytes: number;
  seconds: number;
  pointsPerSec: number;
  /** 10^6 bytes of request body per second. */
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Peak RSS of the target over its whole life (VmHWM), MiB. */
  peakRssMiB: number;
  /** RSS before any load (as given to combine), MiB: the fixed part of peakRssMiB. */
  idleRssMiB: number;
  /** Target's CPU seconds per wall second in the windows (1.0 = one core busy). */
  cpuCores: number;
  /** The same for the target's main thread only: near 1.0 means its event loop is saturated. */
  mainThreadCores: number;
  /** The load generator's own CPU (this process), competing for the same cores. */
  clientCores: number;
  /**
   * Share of the window the target's main thread was ready to run but had no
   * core. With mainThreadCores it splits the rest of the time into "waiting
   * for a CPU" and "blocked or idle" (I/O, waiting for requests or fsync).
   */
  mainRunqWait: number;
  /** Cores used by everything but the target and the client during the windows: the noise level. */
  otherCores: number;
  /** Target's CPU microseconds per point: less sensitive to a busy machine than points/s. */
  cpuUsPerPoint: number;
  /** points/s and other-load cores of each phase, to show the spread and its cause. */
  phasePointsPerSec: number[];
  phaseOtherCores: number[];
}

interface CpuMark {
  all?: number;
  main?: number;
  wait?: number;
  machine?: number;
  client: number;
}

function markCpu(pid: number): CpuMark {
  const c = process.cpuUsage();
  return {
    all: procCpuSeconds(pid),
    main: procCpuSeconds(pid, pid), // Node's main thread has tid = pid
    wait: threadSchedSeconds(pid, pid)?.wait,
    machine: machineBusySeconds(),
    client: (c.user + c.system) / 1e6,
  };
}

/** A timer that takes a CPU mark at `ms` from now; cancel() when the phase is abandoned. */
function markAt(pid: number, ms: number): { mark: Promise<CpuMark>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const mark = new Promise<CpuMark>((resolve) => {
    timer = setTimeout(() => resolve(markCpu(pid)), ms);
  });
  return { mark, cancel: () => clearTimeout(timer) };
}

/**
 * Runs one phase. Requests completing inside the window count; the window is
 * fixed, so in steady state the requests straddling its edges even out.
 * Any non-200 answer aborts the run: the numbers would be meaningless.
 */
export async function runLoad(opts: LoadOptions): Promise<LoadPhase> {
  const pool = new Pool(opts.url, { connections: opts.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const latencies: number[] = [];
  let points = 0;
  let bytes = 0;
  let ackedPoints = 0;
  let failure: Error | undefined;
  const t0 = performance.now();
  const tStart = t0 + opts.warmupS * 1000;
  const tEnd = tStart + opts.durationS * 1000;
  // CPU time is read by timers at the window's edges, not when the last request ends.
  const startMark = markAt(opts.pid, tStart - t0);
  const endMark = markAt(opts.pid, tEnd - t0);

  const worker = async (w: number): Promise<void> => {
    let k = w;
    while (!failure && performance.now() < tEnd) {
      const body = opts.bodies[k++ % opts.bodies.length]!;
      const sent = performance.now();
      const res = await pool.request({ path: opts.path, method: 'POST', headers: opts.headers(), body: body.bytes });
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        throw new Error(`POST ${opts.path}: ${res.statusCode} ${text.slice(0, 500)}`);
      }
      await res.body.dump();
      const done = performance.now();
      ackedPoints += body.points;
      if (done >= tStart && done <= tEnd) {
        latencies.push(done - sent);
        points += body.points;
        bytes += body.bytes.length;
      }
    }
  };
  try {
    await Promise.all(
      Array.from({ length: opts.connections }, (_, w) =>
        worker(w).catch((err: unknown) => {
          failure ??= err as Error;
        }),
      ),
    );
    if (failure) throw failure;
  } catch (err) {
    startMark.cancel();
    endMark.cancel();
    throw err;
  } finally {
    await pool.close();
  }
  const [a, b] = await Promise.all([startMark.mark, endMark.mark]);
  const delta = (k: 'all' | 'main' | 'wait' | 'machine' | 'client'): number => {
    const x = a[k];
    const y = b[k];
    return x !== undefined && y !== undefined ? y - x : NaN;
  };
  const cpu = delta('all');
  const clientCpu = delta('client');
  // Whatever else ran on the machine meanwhile: other processes and kernel threads (e.g. writeback).
  const otherCpu = delta('machine') - cpu - clientCpu;
  return { latencies, points, bytes, seconds: opts.durationS, ackedPoints, cpu, mainCpu: delta('main'), clientCpu, mainWait: delta('wait'), otherCpu };
}

/** Combines the phases run against one target (pid) into one result. */
export function combine(phases: readonly LoadPhase[], pid: number, idleRssMiB = NaN): LoadResult {
  const sum = (f: (p: LoadPhase) => number): number => phases.reduce((s, p) => s + f(p), 0);
  const latencies = phases.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const seconds = sum((p) => p.seconds);
  const points = sum((p) => p.points);
  const bytes = sum((p) => p.bytes);
  return {
    ackedPoints: sum((p) => p.ackedPoints),
    requests: latencies.length,
    points,
    bytes,
    seconds,
    pointsPerSec: points / seconds,
    mbPerSec: bytes / 1e6 / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? NaN,
    peakRssMiB: (procStatusKb(pid, 'VmHWM') ?? NaN) / 1024,
    idleRssMiB,
    cpuCores: sum((p) => p.cpu) / seconds,
    mainThreadCores: sum((p) => p.mainCpu) / seconds,
    clientCores: sum((p) => p.clientCpu) / seconds,
    mainRunqWait: sum((p) => p.mainWait) / seconds,
    otherCores: sum((p) => p.otherCpu) / seconds,
    cpuUsPerPoint: (sum((p) => p.cpu) * 1e6) / points,
    phasePointsPerSec: phases.map((p) => Math.round(p.points / p.seconds)),
    phaseOtherCores: phases.map((p) => Math.round((100 * p.otherCpu) / p.seconds) / 100),
  };
}
