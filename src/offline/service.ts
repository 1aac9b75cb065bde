/**
 * The offline half of the server, built once in buildApp: datasources,
 * variables, jobs, job exports, the scheduler and run execution.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { FastifyBaseLogger } from 'fastify';
import type { Accounts } from '../auth/accounts.ts';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { DatasourceService, type OfflineDeps } from './datasources.ts';
import { STAGING } from './exportwriter.ts';
import { JobExportService } from './jobexports.ts';
import { JobService } from './jobs.ts';
import { AccountEngines } from './engines.ts';
import { JobRunner, outputFile } from './runner.ts';
import { Scheduler, type Clock } from './scheduler.ts';
import { S3PendingJournal } from './s3pending.ts';
import { OfflineStore, type JobRow } from './store.ts';
import { VariableService } from './variables.ts';

export interface OfflineOptions {
  config: Config;
  db: Database.Database;
  accounts: Accounts;
  log: FastifyBaseLogger;
  /** Injected by tests to drive schedules without waiting. */
  clock?: Clock;
}

export class OfflineService {
  readonly store: OfflineStore;
  readonly deps: OfflineDeps;
  readonly datasources: DatasourceService;
  readonly jobs: JobService;
  readonly exports: JobExportService;
  readonly variables: VariableService;
  readonly runner: JobRunner;
  /** Warm sandboxed DuckDB instances, one per account (engines.ts). */
  readonly engines: AccountEngines;
  readonly scheduler: Scheduler;
  /** S3 job-export publishes in progress; those a crash cut off are taken back at start. */
  readonly s3Pending: S3PendingJournal;
  private recovery: Promise<void> = Promise.resolve();

  constructor(opts: OfflineOptions) {
    const { config } = opts;
    this.store = new OfflineStore(opts.db);
    this.deps = {
      config,
      store: this.store,
      memoryLimit: config.sqlMemory,
      threads: config.sqlThreads,
      tmpDir: path.join(config.dataDir, 'tmp', 'offline'),
      account: (id) => {
        const a = opts.accounts.list().find((x) => x.id === id);
        if (!a) throw new Error(`unknown account ${id}`);
        return a;
      },
    };
    this.datasources = new DatasourceService(this.deps);
    this.jobs = new JobService(this.deps);
    this.exports = new JobExportService(this.deps, this.jobs);
    this.variables = new VariableService(this.store, config.timezone);
    this.engines = new AccountEngines(config, this.deps.tmpDir, path.join(config.dataDir, 'offline', 'output'), config.sqlMemory, config.sqlThreads);
    this.s3Pending = new S3PendingJournal(config, opts.log);
    this.runner = new JobRunner(this.deps, this.jobs, config.offlineTimeoutMs, this.engines, this.s3Pending);
    this.scheduler = new Scheduler({
      store: this.store, jobs: this.jobs, runner: this.runner, timezone: config.timezone,
      slots: config.offlineSlots, clock: opts.clock, log: opts.log,
    });
  }

  /**
   * Removes what runs cut off by a crash left staged, marks those runs Failed
   * and arms the schedules. Their unfinished S3 publishes are taken back in
   * the background (S3 may be slow or down; a publish to the same folder
   * waits for it).
   */
  start(): void {
    sweepStaging(this.deps.config);
    this.recovery = this.s3Pending.recoverAll();
    this.scheduler.start();
  }

  async createJob(account: string, name: string, body: Record<string, unknown>): Promise<void> {
    const row = await this.jobs.create(account, name, body);
    this.scheduler.reschedule(account, row);
  }

  async replaceJob(account: string, name: string, body: Record<string, unknown>): Promise<void> {
    const row = await this.jobs.replace(account, name, body);
    this.scheduler.reschedule(account, row);
  }

  /** Deletes a job (refused while used), its runs and its output. */
  async deleteJob(account: string, name: string): Promise<void> {
    this.jobs.must(account, name);
    this.jobs.checkDeletable(account, name);
    await this.scheduler.forget(account, name);
    this.store.tx(() => {
      this.jobs.checkDeletable(account, name);
      this.store.deleteJob(account, name);
    });
    await rm(path.dirname(outputFile(this.deps, account, name)), { recursive: true, force: true });
  }

  startJob(account: string, name: string, body: Record<string, unknown>): JobRow {
    const job = this.jobs.must(account, name);
    this.scheduler.startJob(account, job, parseRuntimeParams(body.params));
    return job;
  }

  async close(): Promise<void> {
    await this.scheduler.close();
    await this.recovery;
    await this.engines.close();
  }
}

/**
 * Staging folders of runs that a crash cut off: never published, removed at
 * start (no run is active yet). Job exports stage under `.offline-staging`
 * of their bucket or of the hdfs root, job outputs next to their output.
 */
function sweepStaging(config: Config): void {
  const roots = [config.hdfsRoot];
  if (existsSync(config.bucketsDir)) roots.push(...readdirSync(config.bucketsDir).map((b) => path.join(config.bucketsDir, b)));
  for (const r of roots) rmSync(path.join(r, STAGING), { recursive: true, force: true });
  rmSync(path.join(config.dataDir, 'tmp', 'offline'), { recursive: true, force: true });
  const out = path.join(config.dataDir, 'offline', 'output');
  if (!existsSync(out)) return;
  for (const account of readdirSync(out)) {
    for (const job of readdirSync(path.join(out, account))) {
      for (const f of readdirSync(path.join(out, account, job))) {
        if (f.startsWith(STAGING)) rmSync(path.join(out, account, job, f), { recursive: true, force: true });
      }
    }
  }
}

/** `[{name, value}]` of a start body -> a map; E18621 when malformed. */
function parseRuntimeParams(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  const out: Record<string, string> = {};
  if (!Array.isArray(raw)) throw new ApiError('E18621', 'params must be an array of {name, value}');
  for (const p of raw as Array<Record<string, unknown>>) {
    if (typeof p?.name !== 'string' || (typeof p.value !== 'string' && typeof p.value !== 'number')) throw new ApiError('E18621', 'params must be an array of {name, value}');
    out[p.name] = String(p.value);
  }
  return out;
}
