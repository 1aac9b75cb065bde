/**
 * Parquet files through DuckDB: each open file is a TEMP table on its own
 * connection, filled with the columnar loader of src/sql (appendRows), and
 * written with `COPY ... TO ... (FORMAT parquet)` when the file closes, so
 * columns keep their types (BIGINT, DOUBLE, TIMESTAMP, BOOLEAN, lists,
 * STRUCTs for maps with nested fields).
 *
 * Why an instance of its own and not the transforms' SqlEngine: that one
 * runs user SQL with external access disabled and its configuration
 * locked. This one runs only statements built here, may write only below
 * the kodo spool folder (allowed_directories, then external access off and
 * configuration locked, so even a bug cannot make it touch other paths),
 * and lives while any parquet export runs.
 */
import { mkdir } from 'node:fs/promises';
import type { DuckDBAppender, DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Config } from '../../config.ts';
import type { SchemaField } from '../../ingest/types.ts';
import { appendRows } from '../../sql/load.ts';
import type { FusedLoader } from './fused.ts';
import { createTableSql, inputTypeSql, quoteLiteral } from '../../sql/types.ts';
import { poolTurn } from '../../sql/exec.ts';
import { openLockedInstance } from '../../sql/sandbox.ts';

interface Shared {
  instance: Promise<DuckDBInstance>;
  users: number;
}

const shared = new Map<string, Shared>();

async function startInstance(config: Config, spoolDir: string): Promise<DuckDBInstance> {
  await mkdir(spoolDir, { recursive: true });
  return openLockedInstance({ memoryLimit: config.sqlMemory, threads: config.sqlThreads, tempDir: spoolDir + '/duckdb', allowedDirectories: [spoolDir] });
}

/** The DuckDB instance writing parquet files into `spoolDir`; shared, counted, closed with its last user. */
export class ParquetEngine {
  private released = false;

  private constructor(private readonly spoolDir: string, private readonly entry: Shared) {}

  static acquire(config: Config, spoolDir: string): ParquetEngine {
    let entry = shared.get(spoolDir);
    if (!entry) {
      entry = { instance: startInstance(config, spoolDir), users: 0 };
      entry.instance.catch(() => shared.delete(spoolDir));
      shared.set(spoolDir, entry);
    }
    entry.users++;
    return new ParquetEngine(spoolDir, entry);
  }

  /**
   * A new table for one file, with the output columns `schema`; `fused`,
   * when given, loads stored lines into it (appendLines).
   */
  async openTable(schema: readonly SchemaField[], fused?: FusedLoader): Promise<ParquetTable> {
    const conn = await (await this.entry.instance).connect();
    try {
      await conn.run(createTableSql('f', schema));
    } catch (err) {
      conn.closeSync();
      throw err;
    }
    return new ParquetTable(conn, [...schema], fused);
  }

  /** Drops this user; the instance closes with its last one. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (--this.entry.users > 0) return;
    shared.delete(this.spoolDir);
    (await this.entry.instance.catch(() => undefined))?.closeSync();
  }
}

/**
 * The rows of one parquet file being collected. One appender for the whole
 * file: it flushes into the table as its buffer fills, not once per batch.
 */
export class ParquetTable {
  rows = 0;
  private appender: DuckDBAppender | undefined;
  private closed = false;

  constructor(private readonly conn: DuckDBConnection, private readonly schema: SchemaField[], private readonly fused?: FusedLoader) {}

  /** Whether the table loads stored lines itself (appendLines) rather than decoded columns. */
  get takesLines(): boolean {
    return this.fused !== undefined;
  }

  /** Appends stored lines [start, start + n) through the fused loader (see fused.ts). */
  async appendLines(lines: readonly string[], start: number, n: number): Promise<void> {
    if (!this.fused) throw new Error('this parquet table takes decoded columns');
    this.appender ??= await this.conn.createAppender('f', null, 'temp');
    this.fused(this.appender, lines, start, n);
    this.rows += n;
  }

  /** Appends rows [0, n) of the column arrays (one per schema column). */
  async append(vals: readonly (readonly unknown[])[], n: number): Promise<void> {
    this.appender ??= await this.conn.createAppender('f', null, 'temp');
    appendRows(this.appender, this.schema, n, (start, m, cols) => {
      for (let c = 0; c < vals.length; c++) {
        const src = vals[c] as readonly unknown[];
        const dst = cols[c] as unknown[];
        for (let i = 0; i < m; i++) dst[i] = src[start + i];
      }
    });
    this.rows += n;
  }

  /** Writes the rows to `file` (under the spool folder) as parquet. */
  async writeTo(file: string): Promise<void> {
    this.appender?.closeSync(); // flushes
    this.appender = undefined;
    // The COPY holds a thread of Node's pool for its whole run: it takes a turn like user SQL does.
    await poolTurn(() => this.conn.run(`COPY f TO ${quoteLiteral(file)} (FORMAT parquet)`));
  }

  /** Drops the rows. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.appender?.closeSync();
    } catch {
      // the rows are dropped anyway
    }
    this.conn.closeSync();
  }
}

/** The parquet column types of output columns, for previews. */
export function parquetTypes(schema: readonly SchemaField[]): Array<{ name: string; type: string }> {
  return schema.map((f) => ({ name: f.key, type: inputTypeSql(f) }));
}
