/**
 * Running statements on a connection of the sandboxed engine: the timeout
 * (interrupt), loading points, and the two error kinds callers tell apart.
 * Shared by one-off runs (engine.ts) and staged sources (stage.ts).
 */
import type { DuckDBConnection, DuckDBMaterializedResult } from '@duckdb/node-api';
import type { Point, SchemaField } from '../ingest/types.ts';
import { appendRows, extractorFor, type RowFiller } from './load.ts';
import { Slots } from '../services/slots.ts';

/** The query ran longer than its timeout and was interrupted. */
export class SqlTimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SqlTimeoutError';
  }
}

/** The engine failed while loading or running (out of memory, cast failure...); `cause` has the engine error. */
export class SqlRuntimeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SqlRuntimeError';
  }
}

/**
 * A run produced more output than one run may write (`kind`: points or
 * encoded bytes); the caller says which setting raises `max`.
 */
export class OutputLimitError extends Error {
  constructor(
    readonly kind: 'points' | 'bytes',
    readonly actual: number,
    readonly max: number,
    message = `the run produced ${kind === 'points' ? `${actual} points` : `more than ${max} bytes`}, more than the ${max} ${kind} one run may write`,
  ) {
    super(message);
    this.name = 'OutputLimitError';
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function load(conn: DuckDBConnection, table: string, schema: SchemaField[], points: Point[]): Promise<void> {
  const extract = extractorFor(schema);
  await loadRows(conn, table, schema, points.length, (start, n, cols) => extract(points, start, n, cols));
}

/** Appends `count` rows given by `fill` (see load.ts appendRows) to `table`. */
export async function loadRows(conn: DuckDBConnection, table: string, schema: SchemaField[], count: number, fill: RowFiller): Promise<void> {
  try {
    const appender = await conn.createAppender(table, null, 'temp');
    try {
      appendRows(appender, schema, count, fill);
    } finally {
      appender.closeSync(); // flushes
    }
  } catch (err) {
    throw new SqlRuntimeError(`loading ${count} points failed: ${errorText(err)}`, { cause: err });
  }
}

/**
 * Runs `fn`, interrupting the connection once `timeoutMs` has passed
 * (`budgetMs` is the whole budget, for the message). DuckDB
 * checks for interrupts between vectors of work, in execution and in
 * planning (constant folding), so the error follows within milliseconds
 * unless a single value is expensive to compute. Waits first for a turn
 * at Node's thread pool (see POOL_THREADS); the wait is not counted.
 */
export async function withTimeout<T>(conn: DuckDBConnection, timeoutMs: number, fn: () => Promise<T>, budgetMs = timeoutMs): Promise<T> {
  const release = await poolGate.acquire();
  try {
    return await timed(conn, timeoutMs, fn, budgetMs);
  } finally {
    release();
  }
}

/**
 * Each DuckDB call holds a thread of Node's pool (UV_THREADPOOL_SIZE, 4 by
 * default) until it returns; gunzip of pushed bodies, opening log segments
 * and file reads need that pool too. User SQL may hold all but two of its
 * threads; further statements wait their turn (not counted in their budget).
 */
const POOL_THREADS = Number(process.env.UV_THREADPOOL_SIZE) || 4;

const poolGate = new Slots(Math.max(1, POOL_THREADS - 2));

/**
 * Runs `fn` (DuckDB calls of an instance other than the transform engine's:
 * offline jobs, kodo parquet files) once a thread of Node's pool is free for
 * SQL, so such work cannot starve pushes either (see POOL_THREADS).
 */
export async function poolTurn<T>(fn: () => Promise<T>): Promise<T> {
  const release = await poolGate.acquire();
  try {
    return await fn();
  } finally {
    release();
  }
}

async function timed<T>(conn: DuckDBConnection, timeoutMs: number, fn: () => Promise<T>, budgetMs: number): Promise<T> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.interrupt();
  }, Math.max(0, timeoutMs));
  try {
    return await fn();
  } catch (err) {
    if (timedOut) throw new SqlTimeoutError(`query exceeded ${budgetMs} ms and was interrupted`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

export async function execute(conn: DuckDBConnection, sql: string): Promise<DuckDBMaterializedResult> {
  try {
    return await conn.run(sql);
  } catch (err) {
    throw new SqlRuntimeError(errorText(err), { cause: err });
  }
}
