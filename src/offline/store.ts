/**
 * Offline metadata on the shared SQLite database (tables of migration 003):
 * datasources, jobs, job exports, user variables and runs. Every method takes
 * the account first; rows of other accounts are invisible.
 */
import type Database from 'better-sqlite3';
import { WalSync } from '../storage/walsync.ts';
import type { SchemaField } from '../ingest/types.ts';

export interface DatasourceRow {
  name: string;
  type: string;
  spec: Record<string, unknown>;
  schema: SchemaField[];
  extra: Record<string, unknown>;
  createTime: string;
  updateTime: string;
}

export interface JobRow {
  name: string;
  spec: JobSpec;
  paused: boolean;
  createTime: string;
  updateTime: string;
}

/** A job as stored: validated and normalised (see jobs.ts). */
export interface JobSpec {
  srcs: JobSrc[];
  computation: { code: string; type: string };
  container?: { type: string; count: number };
  scheduler: { type: SchedulerType; spec?: { crontab?: string; loop?: string } };
  params: Array<{ name: string; default: string }>;
  /** Fields beyond the contract the client sent (workflow, description...), returned as given. */
  extra: Record<string, unknown>;
  /** The SQL's result schema, found when the job was created or replaced. */
  schema?: SchemaField[];
  /** The result columns' names as DuckDB gives them, in schema order (`count_star()` for the field count_star). */
  columns?: string[];
}

export type SchedulerType = 'crontab' | 'loop' | 'once' | 'manual' | 'depend';

export interface JobSrc {
  name: string;
  type: 'datasource' | 'job';
  tableName: string;
  fileFilter?: string;
}

export interface JobExportRow {
  job: string;
  name: string;
  type: string;
  spec: Record<string, unknown>;
  createTime: string;
  updateTime: string;
}

export interface VariableRow {
  name: string;
  type: 'time' | 'string';
  value: string;
  format: string;
}

export type RunStatus = 'Ready' | 'Running' | 'Successful' | 'Failed' | 'Canceled' | 'Cancelling' | 'Restarting';

export interface RunRow {
  runId: number;
  batchTime: number;
  /** When the scheduler added the batch (Ready). */
  queueTime: number;
  status: RunStatus;
  startTime: number | null;
  endTime: number | null;
  message: string;
  params: Record<string, string>;
  rerunCount: number;
}

type Row = Record<string, unknown>;

/** History kept per job: an every-minute job keeps about a week. */
export const MAX_RUNS_PER_JOB = 10_000;
const json = <T>(v: unknown): T => JSON.parse(v as string) as T;

const dsRow = (r: Row): DatasourceRow => ({
  name: r.name as string,
  type: r.type as string,
  spec: json(r.spec_json),
  schema: json(r.schema_json),
  extra: json(r.extra_json),
  createTime: r.create_time as string,
  updateTime: r.update_time as string,
});
const jobRow = (r: Row): JobRow => ({
  name: r.name as string,
  spec: json(r.spec_json),
  paused: r.paused === 1,
  createTime: r.create_time as string,
  updateTime: r.update_time as string,
});
const exportRow = (r: Row): JobExportRow => ({
  job: r.job as string,
  name: r.name as string,
  type: r.type as string,
  spec: json(r.spec_json),
  createTime: r.create_time as string,
  updateTime: r.update_time as string,
});
const runRow = (r: Row): RunRow => ({
  runId: r.run_id as number,
  batchTime: r.batch_time as number,
  queueTime: r.queue_time as number,
  status: r.status as RunStatus,
  startTime: (r.start_time as number | null) ?? null,
  endTime: (r.end_time as number | null) ?? null,
  message: r.message as string,
  params: json(r.params_json),
  rerunCount: r.rerun_count as number,
});

/** History query: filters, order and page (1-based). */
export interface HistoryQuery {
  status?: string;
  runId?: number;
  sortBy: 'runId' | 'batchTime' | 'startTime' | 'endTime' | 'duration';
  desc: boolean;
  page: number;
  size: number;
}

const SORT_SQL: Record<HistoryQuery['sortBy'], string> = {
  runId: 'run_id',
  batchTime: 'batch_time',
  startTime: 'start_time',
  endTime: 'end_time',
  duration: '(end_time - start_time)',
};

/** Offline tables of the metadata store. */
export class OfflineStore {
  private readonly cache = new Map<string, Database.Statement>();
  /** jobsUsing memo: account -> "type\0src name" -> job names, sorted; dropped when a job of the account is written. */
  private readonly srcUsers = new Map<string, Map<string, string[]>>();
  private readonly wal: WalSync;
  constructor(readonly db: Database.Database) {
    this.wal = new WalSync(db);
  }

  private st(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  /** Runs fn in one transaction; a rollback also drops the jobsUsing memo (it may hold rows never committed). */
  tx<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      this.srcUsers.clear();
      throw err;
    }
  }

  // datasources
  getDatasource(account: string, name: string): DatasourceRow | undefined {
    const r = this.st('SELECT * FROM offline_datasources WHERE account=? AND name=?').get(account, name) as Row | undefined;
    return r && dsRow(r);
  }
  listDatasources(account: string): DatasourceRow[] {
    return (this.st('SELECT * FROM offline_datasources WHERE account=? ORDER BY name').all(account) as Row[]).map(dsRow);
  }
  putDatasource(account: string, d: DatasourceRow): void {
    this.st('INSERT OR REPLACE INTO offline_datasources VALUES (?,?,?,?,?,?,?,?)')
      .run(account, d.name, d.type, JSON.stringify(d.spec), JSON.stringify(d.schema), JSON.stringify(d.extra), d.createTime, d.updateTime);
  }
  deleteDatasource(account: string, name: string): void {
    this.st('DELETE FROM offline_datasources WHERE account=? AND name=?').run(account, name);
  }

  // jobs
  getJob(account: string, name: string): JobRow | undefined {
    const r = this.st('SELECT * FROM offline_jobs WHERE account=? AND name=?').get(account, name) as Row | undefined;
    return r && jobRow(r);
  }
  listJobs(account: string): JobRow[] {
    return (this.st('SELECT * FROM offline_jobs WHERE account=? ORDER BY name').all(account) as Row[]).map(jobRow);
  }
  allJobs(): Array<JobRow & { account: string }> {
    return (this.st('SELECT * FROM offline_jobs').all() as Row[]).map((r) => ({ ...jobRow(r), account: r.account as string }));
  }
  /**
   * Jobs with a src of this type and name. Every run asks this twice (does its
   * output need keeping, whom to trigger): an account's answers are kept in
   * memory until one of its jobs is written, because the query parses every
   * job's spec (0.66 ms of CPU per call with 1,000 jobs in an account).
   */
  jobsUsing(account: string, type: 'datasource' | 'job', name: string): string[] {
    let users = this.srcUsers.get(account);
    if (!users) {
      users = new Map();
      const rows = this.st(
        "SELECT j.name, json_extract(s.value, '$.type') AS type, json_extract(s.value, '$.name') AS src FROM offline_jobs j, json_each(j.spec_json, '$.srcs') s WHERE j.account=? ORDER BY j.name",
      ).all(account) as Row[];
      for (const r of rows) {
        const k = `${r.type as string}\u0000${r.src as string}`;
        const list = users.get(k) ?? [];
        if (list[list.length - 1] !== r.name) list.push(r.name as string);
        users.set(k, list);
      }
      this.srcUsers.set(account, users);
    }
    return [...(users.get(`${type}\u0000${name}`) ?? [])];
  }
  putJob(account: string, j: JobRow): void {
    this.srcUsers.delete(account);
    this.st('INSERT OR REPLACE INTO offline_jobs VALUES (?,?,?,?,?,?)').run(account, j.name, JSON.stringify(j.spec), j.paused ? 1 : 0, j.createTime, j.updateTime);
  }
  setPaused(account: string, name: string, paused: boolean): void {
    this.st('UPDATE offline_jobs SET paused=? WHERE account=? AND name=?').run(paused ? 1 : 0, account, name);
  }
  /** Deletes a job with its exports and runs. */
  deleteJob(account: string, name: string): void {
    this.srcUsers.delete(account);
    this.tx(() => {
      this.st('DELETE FROM offline_jobs WHERE account=? AND name=?').run(account, name);
      this.st('DELETE FROM offline_job_exports WHERE account=? AND job=?').run(account, name);
      this.st('DELETE FROM offline_runs WHERE account=? AND job=?').run(account, name);
    });
  }

  // job exports
  getExport(account: string, job: string, name: string): JobExportRow | undefined {
    const r = this.st('SELECT * FROM offline_job_exports WHERE account=? AND job=? AND name=?').get(account, job, name) as Row | undefined;
    return r && exportRow(r);
  }
  listExports(account: string, job: string): JobExportRow[] {
    return (this.st('SELECT * FROM offline_job_exports WHERE account=? AND job=? ORDER BY name').all(account, job) as Row[]).map(exportRow);
  }
  putExport(account: string, e: JobExportRow): void {
    this.st('INSERT OR REPLACE INTO offline_job_exports VALUES (?,?,?,?,?,?,?)')
      .run(account, e.job, e.name, e.type, JSON.stringify(e.spec), e.createTime, e.updateTime);
  }
  deleteExport(account: string, job: string, name: string): void {
    this.st('DELETE FROM offline_job_exports WHERE account=? AND job=? AND name=?').run(account, job, name);
  }

  // variables
  getVariable(account: string, name: string): VariableRow | undefined {
    return this.st('SELECT name, type, value, format FROM offline_variables WHERE account=? AND name=?').get(account, name) as VariableRow | undefined;
  }
  listVariables(account: string): VariableRow[] {
    return this.st('SELECT name, type, value, format FROM offline_variables WHERE account=? ORDER BY name').all(account) as VariableRow[];
  }
  putVariable(account: string, v: VariableRow): void {
    this.st('INSERT OR REPLACE INTO offline_variables VALUES (?,?,?,?,?,?)').run(account, v.name, v.type, v.value, v.format, new Date().toISOString());
  }
  deleteVariable(account: string, name: string): void {
    this.st('DELETE FROM offline_variables WHERE account=? AND name=?').run(account, name);
  }

  // runs
  /** Adds a batch with the next run id (1, 2, ...) in state Ready; keeps the newest MAX_RUNS_PER_JOB batches of a job. */
  addRun(account: string, job: string, batchTime: number, params: Record<string, string>, queueTime: number): RunRow {
    return this.tx(() => {
      const r = this.st('SELECT COALESCE(MAX(run_id), 0) + 1 AS id FROM offline_runs WHERE account=? AND job=?').get(account, job) as Row;
      const runId = r.id as number;
      this.st("INSERT INTO offline_runs (account, job, run_id, batch_time, queue_time, status, params_json) VALUES (?,?,?,?,?,'Ready',?)").run(account, job, runId, batchTime, queueTime, JSON.stringify(params));
      if (runId > MAX_RUNS_PER_JOB) this.st('DELETE FROM offline_runs WHERE account=? AND job=? AND run_id <= ?').run(account, job, runId - MAX_RUNS_PER_JOB);
      return { runId, batchTime, queueTime, status: 'Ready', startTime: null, endTime: null, message: '', params, rerunCount: 0 } satisfies RunRow;
    });
  }
  getRun(account: string, job: string, runId: number): RunRow | undefined {
    const r = this.st('SELECT * FROM offline_runs WHERE account=? AND job=? AND run_id=?').get(account, job, runId) as Row | undefined;
    return r && runRow(r);
  }
  latestRun(account: string, job: string): RunRow | undefined {
    const r = this.st('SELECT * FROM offline_runs WHERE account=? AND job=? ORDER BY run_id DESC LIMIT 1').get(account, job) as Row | undefined;
    return r && runRow(r);
  }
  /** Newest batch of the job in any state (for loop schedules after a restart). */
  lastBatchTime(account: string, job: string): number | undefined {
    const r = this.st('SELECT MAX(batch_time) AS t FROM offline_runs WHERE account=? AND job=?').get(account, job) as Row;
    return (r.t as number | null) ?? undefined;
  }
  updateRun(account: string, job: string, runId: number, fields: Partial<Pick<RunRow, 'status' | 'startTime' | 'endTime' | 'message' | 'rerunCount'>>): void {
    const cur = this.getRun(account, job, runId);
    if (!cur) return;
    const n = { ...cur, ...fields };
    this.st('UPDATE offline_runs SET status=?, start_time=?, end_time=?, message=?, rerun_count=? WHERE account=? AND job=? AND run_id=?')
      .run(n.status, n.startTime, n.endTime, n.message, n.rerunCount, account, job, runId);
  }
  /**
   * Marks a Ready batch Running, without an fsync of its own (WalSync.write,
   * like MetaStore.setOffset with durable:false): a power cut may lose it,
   * but never reorder it after the run's terminal status, which is made
   * durable and syncs it along. Either way recovery (failInterrupted) marks
   * the batch Failed, Ready or Running.
   */
  markRunning(account: string, job: string, runId: number, startTime: number): void {
    const st = this.st("UPDATE offline_runs SET status='Running', start_time=?, end_time=NULL, message='' WHERE account=? AND job=? AND run_id=?");
    this.wal.write(() => st.run(startTime, account, job, runId));
  }
  /**
   * The terminal status of a run: committed at once (readers see it), and
   * durable when the promise resolves, through a group fsync of the WAL on a
   * sync thread shared by the runs that end together (decision 020) rather
   * than one blocking fsync per run.
   */
  finishRun(account: string, job: string, runId: number, fields: { status: RunRow['status']; endTime: number; message: string }): Promise<void> {
    const st = this.st('UPDATE offline_runs SET status=?, end_time=?, message=? WHERE account=? AND job=? AND run_id=?');
    return this.wal.commit(() => st.run(fields.status, fields.endTime, fields.message, account, job, runId));
  }
  history(account: string, job: string, q: HistoryQuery): { total: number; runs: RunRow[] } {
    const where = ['account=?', 'job=?'];
    const args: unknown[] = [account, job];
    if (q.status) {
      where.push('status=?');
      args.push(q.status);
    }
    if (q.runId !== undefined) {
      if (q.runId === -1) where.push('run_id = (SELECT MAX(run_id) FROM offline_runs WHERE account=? AND job=?)');
      else where.push('run_id=?');
      args.push(...(q.runId === -1 ? [account, job] : [q.runId]));
    }
    const w = where.join(' AND ');
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM offline_runs WHERE ${w}`).get(...args) as Row).n as number;
    const order = `${SORT_SQL[q.sortBy]} ${q.desc ? 'DESC' : 'ASC'} NULLS LAST, run_id ${q.desc ? 'DESC' : 'ASC'}`;
    const rows = this.db.prepare(`SELECT * FROM offline_runs WHERE ${w} ORDER BY ${order} LIMIT ? OFFSET ?`).all(...args, q.size, (q.page - 1) * q.size) as Row[];
    return { total, runs: rows.map(runRow) };
  }
  /** Batches now Ready or Running (Cancelling counts as Running), per job (the status index keeps this to the live ones). */
  activeRuns(): Array<{ account: string; job: string; status: 'Ready' | 'Running'; runs: number }> {
    const rows = this.st("SELECT account, job, CASE WHEN status = 'Ready' THEN 'Ready' ELSE 'Running' END AS s, COUNT(*) AS n FROM offline_runs WHERE status IN ('Ready','Running','Cancelling','Restarting') GROUP BY account, job, s").all() as Row[];
    return rows.map((r) => ({ account: r.account as string, job: r.job as string, status: r.s as 'Ready' | 'Running', runs: r.n as number }));
  }
  /** Marks batches a stop of the process left Ready, Running or Cancelling as Failed; returns how many. */
  failInterrupted(now: number): number {
    const running = this.st("UPDATE offline_runs SET status='Failed', end_time=?, message=? WHERE status IN ('Running','Cancelling','Restarting')")
      .run(now, 'the server stopped during this run (crash or restart); rerun it to try again').changes;
    const queued = this.st("UPDATE offline_runs SET status='Failed', end_time=?, message=? WHERE status = 'Ready'")
      .run(now, 'the server stopped before this batch started (crash or restart); rerun it to run it').changes;
    return running + queued;
  }
}
