/**
 * The offline half of the server, built once in buildApp: datasources,
 * variables, jobs, job exports, the scheduler and run execution.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { FastifyBaseLogger } from 'fastify';
import type { Accounts } from '../auth/accounts.ts';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { DatasourceService, type OfflineDeps } from './datasources.ts';
import { JobExportService } from './jobexports.ts';
import { JobService } from './jobs.ts';
import { JobRunner, outputFile } from './runner.ts';
import { Scheduler, type Clock } from './scheduler.ts';
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
  readonly scheduler: Scheduler;

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
    this.runner = new JobRunner(this.deps, this.jobs, config.offlineTimeoutMs);
    this.scheduler = new Scheduler({
      store: this.store, jobs: this.jobs, runner: this.runner, timezone: config.timezone,
      slots: config.offlineSlots, clock: opts.clock, log: opts.log,
    });
  }

  /** Marks crashed runs Failed and arms the schedules. */
  start(): void {
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
