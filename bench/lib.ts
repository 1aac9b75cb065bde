/**
 * Shared pieces of the benchmark suite: the workload contract, a cleanup
 * registry (temp dirs, child processes), statistics, /proc readings and
 * report formatting. Workloads live in their own files and are listed in run.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** One row of a report table: a label and its columns, already formatted. */
export interface ReportTable {
  title: string;
  columns: string[];
  rows: string[][];
}

/** A target from the issue and whether this run met it. */
export interface Check {
  name: string;
  target: string;
  actual: string;
  ok: boolean;
}

export interface WorkloadResult {
  tables: ReportTable[];
  checks: Check[];
  /** Every measured number, for the BENCH_JSON line. */
  json: Record<string, unknown>;
  /** Free-form lines printed under the tables (e.g. a profile summary). */
  notes?: string[];
}

export interface BenchOptions {
  /** Measured seconds per target, split over `rounds` phases. */
  durationS: number;
  /** Phases per target; targets take turns so machine noise hits them alike. */
  rounds: number;
  /** Unmeasured seconds before a target's first load phase (JIT, connections, page cache). */
  warmupS: number;
  connections: number;
  /** Directory to keep a --cpu-prof of the server in, when profiling. */
  cpuProfDir: string | undefined;
}

export interface BenchContext {
  /** Repository root (where package.json is). */
  root: string;
  opts: BenchOptions;
  /** Undo steps of this workload (temp dirs, children): run when the workload ends. */
  cleanup: Cleanup;
  /** Undo steps of things shared by workloads (the server build): run when the suite ends. */
  suiteCleanup: Cleanup;
  log(msg: string): void;
}

export interface Workload {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<WorkloadResult>;
}

/**
 * LIFO list of undo steps. Runs on normal completion, on error and on
 * SIGINT/SIGTERM, so no temp dir or child process outlives the bench.
 */
export class Cleanup {
  private readonly steps: Array<{ name: string; fn: () => void | Promise<void> }> = [];
  private readonly syncSteps = new Set<() => void>();

  /** Registers an async undo step; returns a function that runs it early (once). */
  add(name: string, fn: () => void | Promise<void>): () => Promise<void> {
    let done = false;
    const step = { name, fn: async (): Promise<void> => {
      if (done) return;
      done = true;
      await fn();
    } };
    this.steps.push(step);
    return step.fn;
  }

  /** A step that must also run from process.on('exit'), where nothing async works. */
  addSync(fn: () => void): () => void {
    this.syncSteps.add(fn);
    return () => {
      if (!this.syncSteps.delete(fn)) return;
      fn();
    };
  }

  async runAll(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.fn();
      } catch (err) {
        process.stderr.write(`cleanup "${step.name}" failed: ${(err as Error).message}\n`);
      }
    }
    this.runSync();
  }

  runSync(): void {
    for (const fn of [...this.syncSteps]) {
      this.syncSteps.delete(fn);
      try {
        fn();
      } catch {
        // best effort at process exit
      }
    }
  }
}

/** A fresh temp directory, removed by the cleanup registry even on exit. */
export function tempDir(cleanup: Cleanup, prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `pipeline-bench-${prefix}-`));
  const remove = cleanup.addSync(() => rmSync(dir, { recursive: true, force: true }));
  cleanup.add(`remove ${dir}`, remove);
  return dir;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Fields of /proc/<pid>/status in kB (VmHWM = peak RSS, VmRSS = current). */
export function procStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * User + system CPU seconds a process has used so far (/proc/<pid>/stat), or
 * one of its threads (/proc/<pid>/task/<tid>/stat; Node's main thread has tid = pid).
 */
export function procCpuSeconds(pid: number, tid?: number): number | undefined {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // The command name may contain spaces; fields restart after its ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14, 15)
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/**
 * Seconds a thread has spent on a CPU and waiting for one on the run queue
 * (/proc/<pid>/task/<tid>/schedstat). A high wait means the thread was ready
 * but the cores were busy: contention, not the code under test, set its pace.
 */
export function threadSchedSeconds(pid: number, tid: number): { run: number; wait: number } | undefined {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    return run !== undefined && wait !== undefined ? { run: run / 1e9, wait: wait / 1e9 } : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds all cores spent busy so far (/proc/stat: everything but idle and iowait). */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    const busy = [user, nice, system, irq, softirq, steal].reduce((s: number, v) => s + (v ?? NaN), 0);
    return Number.isFinite(busy) ? busy / 100 : undefined;
  } catch {
    return undefined;
  }
}

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  node: string;
  platform: string;
  totalMemMB: number;
  loadAvg: number[];
  date: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    totalMemMB: Math.round(os.totalmem() / 2 ** 20),
    loadAvg: os.loadavg().map((v) => Math.round(v * 100) / 100),
    date: new Date().toISOString(),
  };
}

/** 1234567 -> "1,234,567" (rounded). */
export function fmtInt(v: number): string {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-';
}

export function fmtNum(v: number, digits = 1): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

/** Renders a table with right-aligned numeric columns. */
export function renderTable(t: ReportTable): string {
  const all = [t.columns, ...t.rows];
  const widths = t.columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [t.title, line(t.columns), sep, ...t.rows.map(line)].join('\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
