/**
 * The measuring loop the sink workloads share: a sink path and a direct
 * baseline alternate (one untimed pass of each, then `rounds` of each), each
 * pass timing only its body, wall clock and this process's CPU. Medians.
 */
import { fmtInt, type BenchContext, type Check } from './lib.ts';

/** A pass: sets up, runs its measured body through `timed`, cleans up. */
export type Pass = (timed: (body: () => Promise<void>) => Promise<void>) => Promise<void>;

export interface PathStats {
  ms: number[];
  /** CPU of this process per item, µs. */
  cpuUs: number[];
  /** Items per second at the median pass time. */
  rate: number;
  medianMs: number;
  medianCpuUs: number;
}

export interface Comparison {
  rounds: number;
  sink: PathStats;
  direct: PathStats;
  ratio: number;
  /** The target check: sink rate / direct rate >= target. */
  check(name: string, unit: string, target: number): Check;
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;

/**
 * Runs the alternating passes. Machine noise (other processes, the target's
 * background work) swings single passes by 2x here, hence at least 7 rounds.
 */
export async function compareSinkToDirect(ctx: BenchContext, items: number, sink: Pass, direct: Pass): Promise<Comparison> {
  const record = (into: { ms: number[]; cpuUs: number[] } | undefined) => async (body: () => Promise<void>): Promise<void> => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await body();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    into?.ms.push(ms);
    into?.cpuUs.push((cpu.user + cpu.system) / items);
  };
  ctx.log(`${fmtInt(items)} items, warm-up`);
  await direct(record(undefined));
  await sink(record(undefined));
  const s = { ms: [] as number[], cpuUs: [] as number[] };
  const d = { ms: [] as number[], cpuUs: [] as number[] };
  const rounds = Math.max(7, ctx.opts.rounds);
  for (let r = 0; r < rounds; r++) {
    await direct(record(d));
    await sink(record(s));
    ctx.log(`round ${r + 1}: direct ${d.ms.at(-1)?.toFixed(0)} ms, sink ${s.ms.at(-1)?.toFixed(0)} ms`);
  }
  const stats = (x: { ms: number[]; cpuUs: number[] }): PathStats => ({ ...x, rate: items / (median(x.ms) / 1000), medianMs: median(x.ms), medianCpuUs: median(x.cpuUs) });
  const sinkStats = stats(s);
  const directStats = stats(d);
  const ratio = sinkStats.rate / directStats.rate;
  return {
    rounds,
    sink: sinkStats,
    direct: directStats,
    ratio,
    check: (name, unit, target) => ({
      name,
      target: `>= ${target}`,
      actual: `${ratio.toFixed(3)} (${fmtInt(sinkStats.rate)} vs ${fmtInt(directStats.rate)} ${unit}/s)`,
      ok: ratio >= target,
    }),
  };
}
