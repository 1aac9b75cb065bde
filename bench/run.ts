/**
 * Benchmark entry: `npm run bench [-- WORKLOAD... ] [--duration=S] [--rounds=N]
 * [--warmup=S] [--connections=N] [--cpu-prof[=DIR]]` (or BENCH_DURATION,
 * BENCH_ROUNDS, BENCH_WARMUP, BENCH_CONNECTIONS). Runs the named workloads (default:
 * all, in the order below), then prints one report: machine context, each
 * workload's tables and target checks, and a `BENCH_JSON ` line with every
 * number. Exits non-zero only when a workload fails to run; missed targets
 * are reported, not failed, because the numbers depend on the machine.
 *
 * To add a workload, implement `Workload` (bench/lib.ts) in its own file and
 * list it in WORKLOADS.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportsHttpWorkload, exportsLatencyWorkload, ingestExportsWorkload } from './exports-http.ts';
import { kodoExportWorkload } from './exports-kodo.ts';
import { healthLoadWorkload } from './health-load.ts';
import { exportsMongoWorkload, exportsTsdbWorkload } from './exports-workloads.ts';
import { ingestTransformWorkload, ingestWorkload } from './ingest.ts';
import { isolationWorkload } from './isolation.ts';
import { logstoreEnginesWorkload, logstoreWorkload } from './logstore.ts';
import { offlineExportWorkload, offlineJobWorkload, offlineSchedulerWorkload } from './offline.ts';
import { Cleanup, machineInfo, renderTable, type BenchContext, type BenchOptions, type Workload, type WorkloadResult } from './lib.ts';
import { pluginThroughputWorkload, transformLatencyWorkload, transformThroughputWorkload } from './transforms.ts';

const WORKLOADS: Workload[] = [
  ingestWorkload, ingestTransformWorkload, transformThroughputWorkload, transformLatencyWorkload, pluginThroughputWorkload, healthLoadWorkload, isolationWorkload,
  exportsHttpWorkload, exportsLatencyWorkload, ingestExportsWorkload, kodoExportWorkload, exportsTsdbWorkload, exportsMongoWorkload,
  logstoreWorkload, logstoreEnginesWorkload,
  offlineJobWorkload, offlineExportWorkload, offlineSchedulerWorkload,
];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv: string[]): { names: string[]; opts: BenchOptions } {
  const opts: BenchOptions = {
    durationS: Number(process.env.BENCH_DURATION ?? 10),
    rounds: Number(process.env.BENCH_ROUNDS ?? 4),
    warmupS: Number(process.env.BENCH_WARMUP ?? 2),
    connections: Number(process.env.BENCH_CONNECTIONS ?? 8),
    cpuProfDir: undefined,
  };
  const names: string[] = [];
  for (const arg of argv) {
    const [flag, value] = arg.split('=', 2) as [string, string | undefined];
    if (flag === '--duration') opts.durationS = Number(value);
    else if (flag === '--warmup') opts.warmupS = Number(value);
    else if (flag === '--rounds') opts.rounds = Number(value);
    else if (flag === '--connections') opts.connections = Number(value);
    else if (flag === '--cpu-prof') opts.cpuProfDir = path.resolve(value ?? 'bench-profiles');
    else if (flag === '--help' || flag === '-h') {
      console.log(`usage: npm run bench -- [${WORKLOADS.map((w) => w.name).join('|')}]... [--duration=S] [--rounds=N] [--warmup=S] [--connections=N] [--cpu-prof[=DIR]]`);
      const width = Math.max(...WORKLOADS.map((w) => w.name.length));
      for (const w of WORKLOADS) console.log(`  ${w.name.padEnd(width)}  ${w.description}`);
      process.exit(0);
    } else if (flag.startsWith('--')) throw new Error(`unknown option ${arg} (see --help)`);
    else names.push(arg);
  }
  const posInt = (v: number): boolean => Number.isInteger(v) && v > 0;
  if (!(opts.durationS > 0 && opts.warmupS >= 0 && posInt(opts.connections) && posInt(opts.rounds))) {
    throw new Error('--duration must be > 0, --warmup >= 0, --connections and --rounds positive integers');
  }
  for (const n of names) {
    if (!WORKLOADS.some((w) => w.name === n)) throw new Error(`unknown workload "${n}"; known: ${WORKLOADS.map((w) => w.name).join(', ')}`);
  }
  return { names, opts };
}

function printReport(results: Array<{ name: string; result?: WorkloadResult; error?: string; seconds: number }>, machine: ReturnType<typeof machineInfo>, opts: BenchOptions): void {
  const end = machineInfo();
  const lines = [
    '',
    '==== benchmark report ====',
    `date ${machine.date}   node ${machine.node}   ${machine.platform}`,
    `cpu ${machine.cpuModel} x ${machine.cpus}   memory ${machine.totalMemMB} MiB   load avg at start ${machine.loadAvg.join(' ')}, at end ${end.loadAvg.join(' ')}`,
    `load: ${opts.connections} connections; per target ${opts.durationS} s measured in ${opts.rounds} alternating round(s), first after a ${opts.warmupS} s warm-up`,
  ];
  for (const r of results) {
    lines.push('', `## ${r.name} (${r.seconds.toFixed(0)} s)`);
    if (r.error !== undefined) {
      lines.push(`FAILED: ${r.error}`);
      continue;
    }
    for (const t of r.result?.tables ?? []) lines.push('', renderTable(t));
    const checks = r.result?.checks ?? [];
    if (checks.length) lines.push('', 'targets:');
    for (const c of checks) lines.push(`  ${c.ok ? 'MET ' : 'MISS'}  ${c.name}: ${c.actual} (target ${c.target})`);
    if (r.result?.notes?.length) lines.push('', ...r.result.notes);
  }
  console.log(lines.join('\n'));
  const json = {
    machine,
    loadAvgEnd: end.loadAvg,
    options: opts,
    workloads: Object.fromEntries(results.map((r) => [r.name, r.error !== undefined ? { error: r.error } : { ...r.result?.json, checks: r.result?.checks }])),
  };
  console.log(`\nBENCH_JSON ${JSON.stringify(json)}`);
}

async function main(): Promise<number> {
  const { names, opts } = parseArgs(process.argv.slice(2));
  const selected = names.length ? WORKLOADS.filter((w) => names.includes(w.name)) : WORKLOADS;
  // Suite-wide: the build. Per workload: its temp dirs and children, removed as soon as it ends.
  const suite = new Cleanup();
  let current: Cleanup | undefined;
  process.on('exit', () => {
    current?.runSync();
    suite.runSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: cleaning up\n`);
      void (async () => {
        await current?.runAll();
        await suite.runAll();
      })().finally(() => process.exit(130));
    });
  }
  let failCurrent: ((err: unknown) => void) | undefined;
  const stray = (err: unknown): void => {
    if (failCurrent) return failCurrent(err);
    process.stderr.write(`uncaught outside any workload: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 2;
  };
  process.on('unhandledRejection', stray);
  process.on('uncaughtException', stray);
  if (opts.cpuProfDir) mkdirSync(opts.cpuProfDir, { recursive: true });
  const machine = machineInfo();
  const results: Array<{ name: string; result?: WorkloadResult; error?: string; seconds: number }> = [];
  try {
    for (const w of selected) {
      current = new Cleanup();
      const ctx: BenchContext = {
        root,
        opts,
        cleanup: current,
        suiteCleanup: suite,
        log: (msg) => process.stderr.write(`[${w.name}] ${msg}\n`),
      };
      const t0 = performance.now();
      try {
        // A stray rejection or throw from the workload's background work fails that workload,
        // instead of killing the suite before it cleans up and reports.
        const stray = new Promise<never>((_, reject) => (failCurrent = reject));
        results.push({ name: w.name, result: await Promise.race([w.run(ctx), stray]), seconds: (performance.now() - t0) / 1000 });
      } catch (err) {
        ctx.log(`failed: ${(err as Error).stack ?? String(err)}`);
        results.push({ name: w.name, error: (err as Error).message, seconds: (performance.now() - t0) / 1000 });
      } finally {
        failCurrent = undefined;
        await current.runAll();
        current = undefined;
      }
    }
  } finally {
    await suite.runAll();
  }
  printReport(results, machine, opts);
  return results.some((r) => r.error !== undefined) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  },
);
