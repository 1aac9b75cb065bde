/**
 * One run of a job: resolve the sources' files at the batch time, open a
 * sandbox that may read exactly those files, expose each source as a view,
 * run the SQL, and write the result to every job export (staged, then
 * published) and, when another job reads this one, to the job's output.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { ApiError } from '../errors.ts';
import { checkQuery, engineMessage, leadingKeyword } from '../sql/check.ts';
import { quoteIdent, quoteLiteral } from '../sql/types.ts';
import { sourceSpecOf, type OfflineDeps } from './datasources.ts';
import { parseExportSpec } from './exportspec.ts';
import { StagedExport, STAGING } from './exportwriter.ts';
import type { JobService } from './jobs.ts';
import { expand, formatTime, variableValues, variablesIn } from './magic.ts';
import { bucketRoot, checkHdfsGrant, checkNoLink, checkRelative } from './paths.ts';
import type { AccountEngines } from './engines.ts';
import { S3StagedExport } from './s3export.ts';
import type { S3PendingJournal } from './s3pending.ts';
import { FetchArea, onS3, sourceFiles } from './s3sources.ts';
import { describeLocation, readSql, showPaths, type SourceFile } from './sources.ts';
import type { JobRow, RunRow } from './store.ts';
import type { SchemaField } from '../ingest/types.ts';
import { poolTurn } from '../sql/exec.ts';

/** A run that failed for a reason the user should read in the history. */
export class RunFailure extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunFailure';
  }
}

/** A run stopped by the user. */
export class RunCancelled extends Error {
  constructor() {
    super('cancelled by the user; partial output discarded');
    this.name = 'RunCancelled';
  }
}

/**
 * Stop and timeout handle of a run in progress. DuckDB's interrupt only
 * stops the statement running at that moment, so once stopped the
 * connection is interrupted again every 50 ms until the run lets go of it:
 * a stop that lands between two statements is not lost.
 */
export class RunControl {
  cancelled = false;
  timedOut = false;
  private conn?: DuckDBConnection;
  private repeat?: NodeJS.Timeout;
  attach(conn: DuckDBConnection): void {
    this.conn = conn;
    if (this.cancelled || this.timedOut) this.interrupt();
  }
  /** The run no longer uses the connection. */
  detach(): void {
    this.conn = undefined;
    clearInterval(this.repeat);
  }
  cancel(): void {
    this.cancelled = true;
    this.interrupt();
  }
  timeout(): void {
    this.timedOut = true;
    this.interrupt();
  }
  /** Throws when the run was stopped or timed out (checked between statements). */
  check(): void {
    if (this.cancelled) throw new RunCancelled();
    if (this.timedOut) throw new RunFailure('timed out');
  }
  private interrupt(): void {
    if (!this.conn) return;
    this.conn.interrupt();
    if (!this.repeat) {
      this.repeat = setInterval(() => this.conn?.interrupt(), 50);
      this.repeat.unref();
    }
  }
}

const fmtBytes = (n: number): string => (n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MB` : `${(n / 1024 ** 3).toFixed(2)} GB`);

/** Where a job's latest successful output lives (read by jobs that have it as a source). */
export function outputFile(deps: OfflineDeps, account: string, job: string): string {
  return path.join(deps.config.dataDir, 'offline', 'output', account, job, 'latest.parquet');
}

/** Leads of SQL that a WITH clause may precede (a query starting with WITH has its own). */
const CTE_LEADS = new Set(['select', 'from', '(', 'values']);

/** The SQL without trailing semicolons and blanks, so it can be nested in another statement. */
export function trimSql(sql: string): string {
  return sql.replace(/[\s;]+$/, '');
}

/** The select list giving a job's result its schema's names and types (`columns`: DuckDB's names, in schema order). */
function resultColumns(schema: SchemaField[], columns: string[] | undefined): string {
  return schema.map((f, i) => {
    const col = quoteIdent(columns?.[i] ?? f.key);
    const as = quoteIdent(f.key);
    return f.valtype === 'long' ? `CAST(${col} AS BIGINT) AS ${as}` : f.valtype === 'float' ? `CAST(${col} AS DOUBLE) AS ${as}` : `${col} AS ${as}`;
  }).join(', ');
}

export class JobRunner {
  constructor(
    private readonly deps: OfflineDeps,
    private readonly jobs: JobService,
    private readonly timeoutMs: number,
    private readonly engines: AccountEngines,
    /** Journal of S3 publishes in progress (s3pending.ts). */
    private readonly journal: S3PendingJournal,
  ) {}

  /** Executes a run; returns the success message or throws RunFailure / RunCancelled. */
  async execute(account: string, job: JobRow, run: RunRow, control: RunControl): Promise<string> {
    // Objects fetched from S3 for this run live in a private folder, removed whatever happens.
    const area = new FetchArea(this.deps.tmpDir, this.deps.config.offlineFetchBytes);
    try {
      return await this.executeIn(area, account, job, run, control);
    } finally {
      await area.close();
    }
  }

  private async executeIn(area: FetchArea, account: string, job: JobRow, run: RunRow, control: RunControl): Promise<string> {
    const { store, config } = this.deps;
    const acc = this.deps.account(account);
    const eff = this.jobs.effective(account, job);
    const params = { ...Object.fromEntries(eff.params.map((p) => [p.name, p.default])), ...run.params };
    const vars = variableValues(run.batchTime, config.timezone, store.listVariables(account), params);
    const ex = (text: string, where: string): string => {
      try {
        return expand(text, vars);
      } catch (err) {
        throw new RunFailure(`${where}: ${(err as Error).message}`, { cause: err });
      }
    };

    // Sources -> files, or the upstream job's output.
    const readFiles: string[] = [];
    const known: SourceFile[] = []; // how the files are shown in messages
    const tables: Array<{ name: string; select: string }> = [];
    for (const src of job.spec.srcs) {
      if (src.type === 'job') {
        const out = outputFile(this.deps, account, src.name);
        if (!existsSync(out)) {
          // Outputs are kept only for jobs that another job reads (runs of other jobs write none).
          const ran = store.history(account, src.name, { status: 'Successful', sortBy: 'runId', desc: true, page: 1, size: 1 }).total > 0;
          throw new RunFailure(ran
            ? `source job ${src.name} has no output kept yet: a job's output is kept from its first successful run after a job reading it was created; run ${src.name} again`
            : `source job ${src.name} has no successful output yet`);
        }
        readFiles.push(out);
        known.push({ file: out, shown: `the output of job ${src.name}`, size: 0 });
        tables.push({ name: src.tableName, select: `SELECT * FROM read_parquet(${quoteLiteral(out)})` });
        continue;
      }
      const ds = store.getDatasource(account, src.name);
      if (!ds) throw new RunFailure(`datasource ${src.name} does not exist any more`);
      const spec = sourceSpecOf(ds);
      spec.prefixes = spec.prefixes.map((p) => ex(p, `datasource ${src.name} path`));
      const filter = ex(src.fileFilter ?? '', `fileFilter of ${src.tableName}`);
      let files;
      try {
        checkRelative(filter, 'expanded fileFilter');
        files = await sourceFiles(config, acc, spec, filter, area);
        control.check();
      } catch (err) {
        if (err instanceof RunCancelled) throw err;
        throw new RunFailure(`datasource ${src.name}: ${err instanceof ApiError ? err.wire : (err as Error).message}`, { cause: err });
      }
      if (files.length === 0) throw new RunFailure(`no files match ${describeLocation(spec, filter)} (table ${src.tableName}, datasource ${src.name})`);
      readFiles.push(...files.map((f) => f.file));
      known.push(...files);
      tables.push({ name: src.tableName, select: readSql(spec, files.map((f) => f.file), ds.schema) });
    }

    // Targets: job exports, and the job's own output when a job reads it.
    const staged: StagedExport[] = [];
    for (const e of store.listExports(account, job.name)) {
      let spec;
      let root: string;
      try {
        spec = parseExportSpec(config, acc, e.type, e.spec, job.spec.schema ?? []);
        const s3 = spec.type === 'kodo' && onS3(config);
        // On S3 the bucket folder is only where DuckDB stages the files before their upload.
        root = s3 ? path.join(this.deps.tmpDir, 's3-exports') : spec.type === 'kodo' ? bucketRoot(config, acc, spec.bucket as string, { create: true }) : config.hdfsRoot;
        if (s3) bucketRoot(config, acc, spec.bucket as string, { create: true });
      } catch (err) {
        throw new RunFailure(`job export ${e.name}: ${err instanceof ApiError ? err.wire : (err as Error).message}`, { cause: err });
      }
      // For once/manual jobs a key prefix not ending in '/' is the file name itself (reference), so no batch time is added to it.
      const single = (eff.scheduler.type === 'once' || eff.scheduler.type === 'manual') && spec.partitionBy.length === 0 && spec.fileCount === 1 && spec.keyPrefix !== '' && !spec.keyPrefix.endsWith('/');
      let key = ex(spec.keyPrefix, `keyPrefix of job export ${e.name}`);
      if (!single && variablesIn(spec.keyPrefix).length === 0) key += formatTime(run.batchTime, 'yyyy-MM-dd-HH-mm-ss', config.timezone);
      key = key.replace(/\/+$/, '');
      try {
        checkRelative(key, 'expanded keyPrefix');
        // Params and user variables can move an hdfs path: the grants apply to where it lands.
        if (spec.type === 'hdfs') checkHdfsGrant(acc, key, `hdfs:///${key}`);
        // Local targets are written (and cleaned by retention) by path: never through a symlink.
        if (!(spec.type === 'kodo' && onS3(config))) checkNoLink(root, key, 'the expanded keyPrefix');
      } catch (err) {
        throw new RunFailure(`job export ${e.name}: ${err instanceof ApiError ? err.wire : (err as Error).message}`);
      }
      const shown = spec.type === 'kodo' ? `kodo://${spec.bucket}/${key}` : `hdfs:///${key}`;
      const target = { name: e.name, root, key, singleFile: single, runId: run.runId, shown };
      const se = spec.type === 'kodo' && onS3(config) ? new S3StagedExport(config, spec, target, this.journal, { account, job: job.name }) : new StagedExport(spec, target);
      try {
        if ((await se.precheck()) === 'skip') {
          staged.push(se);
          continue;
        }
      } catch (err) {
        throw new RunFailure(`job export ${e.name}: ${(err as Error).message}`);
      }
      staged.push(se);
    }
    const writing = staged.filter((s) => !s.result.skipped);
    const needsOutput = store.jobsUsing(account, 'job', job.name).length > 0;
    const outFile = outputFile(this.deps, account, job.name);
    const outStaging = path.join(path.dirname(outFile), `${STAGING}-${randomUUID()}`);
    if (needsOutput) await mkdir(outStaging, { recursive: true });

    let box;
    try {
      box = await this.engines.open(acc, {
        memoryLimit: this.deps.memoryLimit, threads: this.deps.threads,
        tempDir: path.join(this.deps.tmpDir, `run-${randomUUID()}`),
        readFiles,
        dirs: [...writing.map((s) => s.staging), ...(needsOutput ? [outStaging] : [])],
      });
    } catch (err) {
      await rm(outStaging, { recursive: true, force: true });
      throw new RunFailure(`cannot open the run's SQL engine: ${engineMessage(err)}`, { cause: err });
    }
    control.attach(box.conn);
    const timer = setTimeout(() => control.timeout(), this.timeoutMs);
    let rows = 0;
    let sql = '';
    let checked = false; // the SQL passed checkQuery on this run's views
    let clean = false; // the connection holds nothing of this run (no views, no temp table) and was not interrupted
    const views = tables.map((t) => `CREATE OR REPLACE TEMP VIEW ${quoteIdent(t.name)} AS ${t.select}`);
    try {
      const conn = box.conn;
      sql = trimSql(ex(job.spec.computation.code, 'SQL'));
      // Each call takes a turn at Node's pool like transform SQL, so runs cannot starve pushes (decision 018).
      control.check();
      let query: string;
      if (sql === trimSql(job.spec.computation.code) && job.spec.schema !== undefined && tables.length > 0 && CTE_LEADS.has(leadingKeyword(sql))) {
        // The very text checked at create (one SELECT, no parameters) needs no second check, and its
        // sources can be a WITH clause of the same statement instead of views (decision 020).
        query = `WITH ${tables.map((t) => `${quoteIdent(t.name)} AS (${t.select})`).join(', ')}\n${sql}\n`;
      } else {
        if (views.length) await poolTurn(() => conn.run(views.join(';\n')));
        control.check();
        await this.check(conn, sql);
        checked = true;
        query = `${sql}\n`;
      }
      const targets = writing.length + (needsOutput ? 1 : 0);
      // Written columns take the job schema's names and types, which exports and dependent jobs rely on:
      // names were made usable at create (count(*) -> count_star, "Host Name" -> Host_Name; picked by
      // their DuckDB name, not position, as a SELECT * follows datasource PUTs), and a long is a BIGINT
      // (sum() gives HUGEINT, which parquet would store as DOUBLE), a float a DOUBLE.
      const named = job.spec.schema?.length ? `SELECT ${resultColumns(job.spec.schema, job.spec.columns)} FROM (${query})\n` : query;
      // With no target the result is still computed in full (a count over the
      // query would let DuckDB skip columns, and with them errors and cost).
      if (targets === 0) rows = (await poolTurn(() => conn.run(query))).rowCount;
      else if (targets > 1) await poolTurn(() => conn.run(`CREATE TEMP TABLE "__result" AS ${named}`));
      const source = targets > 1 ? '"__result"' : `(${named})`;
      if (needsOutput) {
        const r = await poolTurn(() => conn.runAndReadAll(`COPY (SELECT * FROM ${source}) TO ${quoteLiteral(path.join(outStaging, 'out.parquet'))} (FORMAT parquet)`));
        rows = Number(r.getRows()[0]?.[0] ?? 0);
      }
      for (const se of writing) {
        control.check();
        await mkdir(se.staging, { recursive: true });
        await se.write(conn, source);
        rows = se.result.rows;
      }
      control.check();
      clean = !checked && targets <= 1;
    } catch (err) {
      await Promise.all(staged.map((s) => s.abort()));
      await rm(outStaging, { recursive: true, force: true });
      if (control.cancelled) throw new RunCancelled();
      if (control.timedOut) throw new RunFailure(`run exceeded the offline timeout of ${Math.round(this.timeoutMs / 1000)} s and was interrupted`, { cause: err });
      if (err instanceof RunFailure) throw err;
      // A statement failed before the SQL was checked on this run's files: if the check fails, it says where.
      if (!checked && sql) await this.explain(box.conn, views, sql);
      const msg = showPaths(engineMessage(err), known);
      if (/out of memory/i.test(msg)) throw new RunFailure(`out of memory (limit ${this.deps.memoryLimit}): ${msg.split('\n')[0]}`, { cause: err });
      throw new RunFailure(msg.split('\n')[0] ?? msg, { cause: err });
    } finally {
      clearTimeout(timer);
      control.detach();
      await box.close({ reuse: clean && !control.cancelled && !control.timedOut });
    }

    // Publish: each export's files appear in one rename (overwrite) or file by file (append); on S3 see s3export.ts.
    const parts: string[] = [];
    for (const [i, se] of staged.entries()) {
      try {
        if (!se.result.skipped) await se.publish();
      } catch (err) {
        // An upload that fails (S3 down, bucket removed) fails the run; what was not published is dropped.
        await Promise.all(staged.slice(i).map((s) => s.abort()));
        await rm(outStaging, { recursive: true, force: true });
        throw new RunFailure(`job export ${se.target.name}: publishing to ${se.target.shown} failed: ${(err as Error).message}`, { cause: err });
      }
      const r = se.result;
      const where = `${se.target.name} -> ${se.target.shown}`;
      parts.push(r.skipped ? `${where}: ${r.skipped}` : `${where}: ${r.files} file(s), ${r.rows} rows, ${fmtBytes(r.bytes)}`);
      // Retention only below the literal start of the key prefix, never a whole bucket.
      const staticPrefix = se.spec.keyPrefix.split('$')[0] ?? '';
      if (se.spec.retentionDays > 0 && staticPrefix) {
        const removed = await se.retention(staticPrefix, se.spec.retentionDays, Date.now());
        if (removed) parts.push(`${se.target.name}: retention removed ${removed} old file(s)`);
      }
    }
    if (needsOutput) {
      await rename(path.join(outStaging, 'out.parquet'), outFile);
      await rm(outStaging, { recursive: true, force: true });
    }
    return `${rows} rows${parts.length ? '; exports: ' + parts.join('; ') : ''}`;
  }

  /** checkQuery on this run's views; RunFailure "SQL error: ..." with the engine's position. */
  private async check(conn: DuckDBConnection, sql: string): Promise<void> {
    try {
      await poolTurn(() => checkQuery(conn, sql));
    } catch (err) {
      throw new RunFailure(`SQL error: ${engineMessage(err).replace(/^invalid transform SQL: /, '')}`, { cause: err });
    }
  }

  /**
   * After a failure on the path that skipped the check: when the views can
   * be (re)created, a failing check names the error in the SQL, with its
   * position; otherwise the caller reports the original error.
   */
  private async explain(conn: DuckDBConnection, views: string[], sql: string): Promise<void> {
    try {
      if (views.length) await poolTurn(() => conn.run(views.join(';\n')));
    } catch {
      return;
    }
    await this.check(conn, sql);
  }
}
