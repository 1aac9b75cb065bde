/**
 * The SQL engine behind streaming transforms: an in-process DuckDB instance,
 * sandboxed, on which each run gets its own connection and TEMP table.
 * See docs/decisions/003-sql-engine-and-type-mapping.md.
 */
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { ApiError } from '../errors.ts';
import type { EscapeMode } from '../ingest/escapes.ts';
import type { Point, SchemaField } from '../ingest/types.ts';
import { checkQuery, executableSql } from './check.ts';
import { CheckPool, type CheckPoolOptions } from './check-pool.ts';
import { errorText, execute, load, OutputLimitError, SqlRuntimeError, SqlTimeoutError, withTimeout } from './exec.ts';
import { readRows } from './read.ts';
import { SourceStage } from './stage.ts';
import { openLockedInstance } from './sandbox.ts';
import { createTableSql } from './types.ts';

export { OutputLimitError, SqlRuntimeError, SqlTimeoutError } from './exec.ts';

export interface SqlEngineOptions {
  /** DuckDB memory_limit, e.g. '1GB'; shared by all runs. */
  memoryLimit: string;
  threads: number;
  /** Where DuckDB may spill; without it nothing spills and memory_limit is hard. */
  tempDir?: string;
  /**
   * Where describe() checks SQL: child processes with OS limits (the
   * default, see check-pool.ts) or, with false, this instance (tests of the
   * engine alone).
   */
  check?: CheckPoolOptions | false;
}

/** Check processes: two at most, 1 GiB of address space beyond start-up and 256 MB for DuckDB each. */
export const CHECK_DEFAULTS: CheckPoolOptions = { processes: 2, headroomMb: 1024, memoryLimit: '256MB' };

export interface RunOptions {
  /** Budget for planning plus executing the query (loading the points is not counted). */
  timeoutMs: number;
  /** Most rows the result may have: more fail with OutputLimitError before any is read. */
  maxRows?: number;
}

/** Planning budget for describe(): a query whose constant folding alone takes this long is no transform. */
const DESCRIBE_TIMEOUT_MS = 10_000;

/** Runs user SQL over batches of points. */
export class SqlEngine {
  private closed = false;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly checks: CheckPool | null,
  ) {}

  /** Starts a sandboxed in-memory DuckDB instance. */
  static async create(opts: SqlEngineOptions): Promise<SqlEngine> {
    const instance = await openLockedInstance({ memoryLimit: opts.memoryLimit, threads: opts.threads, tempDir: opts.tempDir ?? '' });
    const check = opts.check ?? CHECK_DEFAULTS;
    return new SqlEngine(instance, check === false ? null : new CheckPool(check));
  }

  /**
   * Checks `sql` against an empty table `table` with `schema` and returns the
   * output schema (all fields required=false). Throws ApiError E18209 with
   * the engine's message for anything but exactly one valid SELECT, and when
   * planning alone exceeds `opts.timeoutMs` (default 10 s).
   */
  async describe(table: string, schema: SchemaField[], sql: string, opts?: RunOptions): Promise<SchemaField[]> {
    const timeoutMs = opts?.timeoutMs ?? DESCRIBE_TIMEOUT_MS;
    if (this.closed) throw new Error('SqlEngine is closed');
    if (this.checks) return this.checks.describe(table, schema, sql, timeoutMs);
    return this.withTable(table, schema, async (conn) => {
      try {
        return (await withTimeout(conn, timeoutMs, () => checkQuery(conn, sql))).fields;
      } catch (err) {
        if (err instanceof SqlTimeoutError) throw new ApiError('E18209', `planning the query took more than ${timeoutMs} ms`, { cause: err });
        throw err;
      }
    });
  }

  /**
   * Loads `points` into a table `table` private to this run, runs `sql` and
   * returns the output schema and rows. Throws ApiError E18209 for invalid
   * SQL, SqlTimeoutError once planning plus execution exceed `opts.timeoutMs`
   * (the synchronous load is not counted), SqlRuntimeError for engine
   * failures (out of memory, cast errors) and failed loads.
   */
  async run(
    table: string,
    schema: SchemaField[],
    points: Point[],
    sql: string,
    opts: RunOptions,
  ): Promise<{ fields: SchemaField[]; rows: Point[] }> {
    return this.withTable(table, schema, async (conn) => {
      // Checked before loading so invalid SQL fails without paying for the load.
      const started = performance.now();
      const plan = await withTimeout(conn, opts.timeoutMs, () => checkQuery(conn, sql));
      const left = opts.timeoutMs - (performance.now() - started);
      await load(conn, table, schema, points);
      // Executed as a fresh statement after loading: a statement prepared over
      // the empty table would be optimised with its (empty) statistics.
      const result = await withTimeout(conn, left, () => execute(conn, executableSql(sql, plan, opts.maxRows)), opts.timeoutMs);
      const n = Number(result.rowCount);
      if (opts.maxRows !== undefined && n > opts.maxRows) throw new OutputLimitError('points', n, opts.maxRows);
      return { fields: plan.fields, rows: readRows(result, plan) };
    });
  }

  /**
   * A staged source: a connection of its own whose TEMP tables hold a source
   * repo's decoded points between runs (see stage.ts). Other connections,
   * and so other sources and accounts, cannot see them. `escapes` is the
   * source repo's escape mode (the reference mode when omitted).
   */
  async openStage(table: string, schema: SchemaField[], escapes?: EscapeMode): Promise<SourceStage> {
    if (this.closed) throw new Error('SqlEngine is closed');
    return new SourceStage(await this.instance.connect(), table, schema, escapes);
  }

  /** Closes the instance; idempotent. Later calls to describe/run throw. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.checks?.close();
    this.instance.closeSync();
  }

  /** A fresh connection with the TEMP table created; TEMP tables die with their connection. */
  private async withTable<T>(table: string, schema: SchemaField[], fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('SqlEngine is closed');
    const conn = await this.instance.connect();
    try {
      try {
        await conn.run(createTableSql(table, schema));
      } catch (err) {
        throw new SqlRuntimeError(`cannot create table ${table}: ${errorText(err)}`, { cause: err });
      }
      return await fn(conn);
    } finally {
      conn.closeSync();
    }
  }
}
