/**
 * Closed-loop HTTP load generator: N keep-alive connections (undici Pool,
 * pipelining 1), each sending the next pre-built body as soon as its previous
 * request is answered, for a warm-up plus a measured window. Also samples the
 * target process's CPU time and peak RSS from /proc.
 */
import { Pool } from 'undici';
import { percentile, procCpuSeconds, procStatusKb } from './lib.ts';
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

export interface LoadResult {
  /** Points acknowledged over the whole run, warm-up included (for the durability check). */
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
  /** Target's CPU seconds per wall second during the window (1.0 = one core busy). */
  cpuCores: number;
  /** Target's CPU microseconds per point ingested during the window. */
  cpuUsPerPoint: number;
}

/**
 * Runs the load. Requests completing inside the window count; the window is
 * fixed, so in steady state the requests straddling its edges even out.
 * Any non-200 answer aborts the run: the numbers would be meaningless.
 */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(opts.url, { connections: opts.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const latencies: number[] = [];
  let points = 0;
  let bytes = 0;
  let ackedPoints = 0;
  let failure: Error | undefined;
  const t0 = performance.now();
  const tStart = t0 + opts.warmupS * 1000;
  const tEnd = tStart + opts.durationS * 1000;
  // CPU time is read by timers exactly at the window's edges, not when the last request ends.
  let cpuAtStart: number | undefined;
  let cpuAtEnd: number | undefined;
  const startTimer = setTimeout(() => (cpuAtStart = procCpuSeconds(opts.pid)), tStart - t0);
  const endTimer = setTimeout(() => (cpuAtEnd = procCpuSeconds(opts.pid)), tEnd - t0);

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
  } finally {
    clearTimeout(startTimer);
    clearTimeout(endTimer);
    await pool.close();
  }
  if (failure) throw failure;
  const seconds = opts.durationS;
  const cpu = cpuAtStart !== undefined && cpuAtEnd !== undefined ? cpuAtEnd - cpuAtStart : NaN;
  latencies.sort((a, b) => a - b);
  return {
    ackedPoints,
    requests: latencies.length,
    points,
    bytes,
    seconds,
    pointsPerSec: points / seconds,
    mbPerSec: bytes / 1e6 / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? NaN,
    peakRssMiB: (procStatusKb(opts.pid, 'VmHWM') ?? NaN) / 1024,
    cpuCores: cpu / seconds,
    cpuUsPerPoint: (cpu * 1e6) / points,
  };
}
