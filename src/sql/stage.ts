/**
 * A staged source: one source repo's decoded points kept in DuckDB between
 * transform runs, so that a run only runs its query. Points are appended in
 * offset order (by the stage feeder as they arrive, or by a run catching up)
 * to TEMP chunk tables on a connection owned by this stage; a run exposes
 * its offset range as a TEMP VIEW named like the source repo and runs the
 * user's SQL on the same connection. TEMP objects are private to their
 * connection, so one source's SQL never sees another source's (or
 * account's) data. See docs/decisions/007-staged-transform-sources.md.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Point, SchemaField } from '../ingest/types.ts';
import { checkQuery, executableSql, type QueryPlan } from './check.ts';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { errorText, execute, loadRows, OutputLimitError, SqlRuntimeError, withTimeout } from './exec.ts';
import type { RowFiller } from './load.ts';
import type { CompiledSchema } from '../ingest/compiled.ts';
import { compileSchema, decodeColumns, REFERENCE_MODE, type EscapeMode } from '../ingest/points.ts';
import type { LineSink } from '../ingest/encode.ts';
import { forEachChunk } from './read.ts';
import { encodeResult } from './wire.ts';
import { createTableSql, quoteIdent } from './types.ts';

/**
 * Rows per chunk table. A run's view is a UNION ALL over the chunks it
 * spans, and the bench's group-by over 1M points took 17-19 ms over four
 * 256k chunks against 11-14 ms over one table, so chunks are big; the price
 * is that memory comes back only when a whole chunk is consumed.
 */
const CHUNK_ROWS = 1_048_576;

/** DuckDB result chunks (2,048 rows each) encoded between two yields to the event loop: a few ms of work. */
const ENCODE_STEP = 32;

interface Chunk {
  /** A name no repo can have ('$' is not allowed in repo names), so it never clashes with the view. */
  table: string;
  /** Offset of the chunk's first row; row i (rowid i) is offset base + i. */
  base: number;
  count: number;
  /** Wire bytes of the staged lines (the stage's memory budget is counted in these). */
  bytes: number;
}

export interface StageQueryResult {
  fields: SchemaField[];
  /** Rows in the result. */
  rows: number;
  /** Hands the result to `fn` chunk by chunk as columns (see read.ts forEachChunk). */
  forEachChunk(fn: (cols: unknown[][], n: number) => void): void;
  /** Writes the result as wire lines for a repo of `schema` (see wire.ts encodeResult). */
  encode(schema: CompiledSchema, sink: LineSink): void;
  /**
   * encode() in steps, yielding to the event loop every 32 DuckDB chunks
   * (64k rows); throws OutputLimitError once the lines pass `maxBytes`.
   */
  encodeBounded(schema: CompiledSchema, sink: LineSink, maxBytes: number): Promise<void>;
}

export class SourceStage {
  private chunks: Chunk[] = [];
  private seq = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  /**
   * Checked plans by SQL text. The view's columns are fixed for the stage's
   * life (a schema change builds a new stage), so a plan stays valid; this
   * saves binding the query twice per run.
   */
  private readonly plans = new Map<string, QueryPlan>();
  /** Definition of the view as last created. */
  private view: string | undefined;
  /** The schema compiled for decoding stored lines (appendLines), on first use. */
  private compiled: CompiledSchema | undefined;

  constructor(
    private readonly conn: DuckDBConnection,
    /** The source repo's name: the view the SQL reads. */
    readonly table: string,
    readonly schema: SchemaField[],
    /** The source repo's escape mode, for decoding its stored lines. */
    readonly escapes: EscapeMode = REFERENCE_MODE,
  ) {}

  /** First staged offset (equal to end when empty). */
  get start(): number {
    return this.chunks[0]?.base ?? this.endOffset;
  }

  /** One past the last staged offset. */
  get end(): number {
    return this.endOffset;
  }

  private endOffset = 0;

  get bytes(): number {
    let b = 0;
    for (const c of this.chunks) b += c.bytes;
    return b;
  }

  get count(): number {
    return this.end - this.start;
  }

  /** Runs `fn` after every earlier exclusive call finished: the connection does one thing at a time. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Appends stored wire lines of the source repo (offsets base .. base + n - 1),
   * decoded straight into columns. `base` must be the current end unless the
   * stage is empty, which then starts at `base`. Not serialised by itself:
   * call it inside exclusive().
   */
  async appendLines(base: number, lines: readonly string[], bytes: number): Promise<void> {
    const compiled = (this.compiled ??= compileSchema(this.schema, this.escapes));
    await this.appendRows(base, lines.length, (start, n, cols) => decodeColumns(lines, start, n, compiled, cols), bytes);
  }

  private async appendRows(base: number, count: number, fill: RowFiller, bytes: number): Promise<void> {
    if (this.closed) throw new Error('stage is closed');
    if (this.chunks.length > 0 && base !== this.endOffset) throw new Error(`stage append at ${base}, expected ${this.endOffset}`);
    if (this.chunks.length === 0) this.endOffset = base;
    let i = 0;
    while (i < count) {
      let last = this.chunks.at(-1);
      if (!last || last.count >= CHUNK_ROWS) {
        last = { table: `$stage_${this.seq++}`, base: this.endOffset, count: 0, bytes: 0 };
        try {
          await this.conn.run(createTableSql(last.table, this.schema));
        } catch (err) {
          throw new SqlRuntimeError(`cannot create stage table: ${errorText(err)}`, { cause: err });
        }
        this.chunks.push(last);
      }
      const n = Math.min(count - i, CHUNK_ROWS - last.count);
      const offset = i;
      try {
        await loadRows(this.conn, last.table, this.schema, n, (start, m, cols) => fill(offset + start, m, cols));
      } catch (err) {
        // Some rows may have landed: rowids would no longer match offsets. Start afresh.
        await this.clear().catch(() => undefined);
        throw err;
      }
      last.count += n;
      last.bytes += Math.round((bytes * n) / count);
      this.endOffset += n;
      i += n;
    }
  }

  /** Drops chunks whose every row is below `offset` (consumed by every reader). */
  async trim(offset: number): Promise<void> {
    while (this.chunks.length > 0) {
      const c = this.chunks[0]!;
      if (c.base + c.count > offset) break;
      this.chunks.shift();
      await this.conn.run(`DROP TABLE IF EXISTS ${quoteIdent(c.table)}`);
    }
  }

  /** Drops everything; the stage then starts afresh at the next append. */
  async clear(): Promise<void> {
    await this.trim(Number.MAX_SAFE_INTEGER);
  }

  /**
   * Runs `sql` over offsets [from, to), which must be staged, with the
   * range visible as the source's table. Throws ApiError E18209 for invalid
   * SQL, SqlTimeoutError past `timeoutMs`, SqlRuntimeError for engine errors.
   * With `maxRows`, DuckDB stops after maxRows + 1 rows (`rows` then tells the caller it was over).
   */
  async query(from: number, to: number, sql: string, timeoutMs: number, maxRows?: number): Promise<StageQueryResult> {
    if (from < this.start || to > this.end || from >= to) throw new Error(`range [${from}, ${to}) is not staged ([${this.start}, ${this.end}))`);
    const cols = this.schema.map((f) => quoteIdent(f.key)).join(', ');
    // A field named rowid (any case) hides DuckDB's rowid pseudo-column: rows are
    // then picked by position (DuckDB keeps insertion order, which is offset order).
    const byPosition = this.schema.some((f) => f.key.toLowerCase() === 'rowid');
    const parts: string[] = [];
    for (const c of this.chunks) {
      const lo = Math.max(from, c.base) - c.base;
      const hi = Math.min(to, c.base + c.count) - c.base;
      if (hi <= lo) continue;
      const select = `SELECT ${cols} FROM ${quoteIdent(c.table)}`;
      if (lo === 0 && hi === c.count) parts.push(select);
      else if (byPosition) parts.push(`(${select} LIMIT ${hi - lo} OFFSET ${lo})`);
      else parts.push(`${select} WHERE rowid >= ${lo} AND rowid < ${hi}`);
    }
    const view = parts.join(' UNION ALL ');
    // Transforms of one source often run over the same range: the view is kept then.
    if (view !== this.view) {
      this.view = undefined;
      try {
        await this.conn.run(`CREATE OR REPLACE TEMP VIEW ${quoteIdent(this.table)} AS ${view}`);
      } catch (err) {
        throw new SqlRuntimeError(`cannot create the source view: ${errorText(err)}`, { cause: err });
      }
      this.view = view;
    }
    const started = performance.now();
    let plan = this.plans.get(sql);
    if (!plan) {
      plan = await withTimeout(this.conn, timeoutMs, () => checkQuery(this.conn, sql));
      if (this.plans.size >= 64) this.plans.clear();
      this.plans.set(sql, plan);
    }
    const left = timeoutMs - (performance.now() - started);
    const checked = plan;
    const result = await withTimeout(this.conn, left, () => execute(this.conn, executableSql(sql, checked, maxRows)), timeoutMs);
    return {
      fields: checked.fields,
      forEachChunk: (fn) => forEachChunk(result, checked, fn),
      rows: Number(result.rowCount),
      encode: (schema, sink) => encodeResult(result, checked, schema, sink),
      encodeBounded: async (schema, sink, maxBytes) => {
        for (let from = 0; from < result.chunkCount; from += ENCODE_STEP) {
          if (from > 0) await yieldToLoop();
          encodeResult(result, checked, schema, sink, { from, to: from + ENCODE_STEP });
          if (sink.len > maxBytes) throw new OutputLimitError('bytes', sink.len, maxBytes);
        }
      },
    };
  }

  /** Frees the staged data (TEMP tables die with the connection). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.chunks = [];
    this.conn.closeSync();
  }
}
