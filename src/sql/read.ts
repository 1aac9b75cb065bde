/**
 * Result chunks -> points. Scalar columns are decoded straight from the
 * vectors' buffers (like load.ts writes them): node-api's DuckDBVector.getItem
 * allocates per value (BigInt validity checks, value objects, a TextDecoder
 * call per string) and made a 1M-row passthrough take seconds. Nested and
 * rare types still go through getItem and the plan's converter.
 */
import duckdb from '@duckdb/node-bindings';
import type { DuckDBDataChunk, DuckDBMaterializedResult } from '@duckdb/node-api';
import type { Point, SchemaField } from '../ingest/types.ts';
import type { QueryPlan } from './check.ts';
import type { TypePlan } from './types.ts';
import { formatMicros, formatMicrosNumber } from './time.ts';

/** Decodes a flat vector of `n` rows into `out` (undefined for NULL). */
type ColumnReader = (vec: duckdb.Vector, n: number, out: unknown[]) => void;

const textDecoder = new TextDecoder();

/** The vector's data as a copy at offset 0, so any typed-array view is aligned. */
export function data(vec: duckdb.Vector, bytes: number): ArrayBuffer {
  const d = duckdb.vector_get_data(vec, bytes);
  return (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? d.buffer : d.slice().buffer) as ArrayBuffer;
}

/** Validity bytes (bit i of the little-endian uint64 words = row i valid), or null when all are valid. */
export function validity(vec: duckdb.Vector, n: number): Uint8Array | null {
  const v = duckdb.vector_get_validity(vec, Math.ceil(n / 64) * 8) as Uint8Array | null;
  return v ?? null;
}

export const isValid = (mask: Uint8Array | null, i: number): boolean => mask === null || ((mask[i >>> 3]! >>> (i & 7)) & 1) === 1;

/** A reader for a fixed-width type, given a decoder over the data buffer. */
function fixed(width: number, decode: (buf: ArrayBuffer, n: number) => (i: number) => unknown): ColumnReader {
  return (vec, n, out) => {
    const get = decode(data(vec, n * width), n);
    const mask = validity(vec, n);
    for (let i = 0; i < n; i++) out[i] = isValid(mask, i) ? get(i) : undefined;
  };
}

/** int64 as a number when exact (|v| < 2^53), else a bigint; no BigInt on the common path. */
function int64Decoder(buf: ArrayBuffer, n: number): (i: number) => number | bigint {
  const words = new Int32Array(buf, 0, n * 2);
  const big = new BigInt64Array(buf, 0, n);
  return (i) => {
    const hi = words[2 * i + 1]!;
    return hi >= -2097152 && hi < 2097152 ? hi * 4294967296 + (words[2 * i]! >>> 0) : big[i]!;
  };
}

const readTimestamp: ColumnReader = (vec, n, out) => {
  const buf = data(vec, n * 8);
  const words = new Int32Array(buf, 0, n * 2);
  const big = new BigInt64Array(buf, 0, n);
  const mask = validity(vec, n);
  for (let i = 0; i < n; i++) {
    if (!isValid(mask, i)) {
      out[i] = undefined;
      continue;
    }
    const hi = words[2 * i + 1]!;
    out[i] = hi >= -2097152 && hi < 2097152 ? formatMicrosNumber(hi * 4294967296 + (words[2 * i]! >>> 0)) : formatMicros(big[i]!);
  }
};

/** VARCHAR: string_t is a uint32 length then 12 inline bytes, or a 4-byte prefix and a pointer. */
const readVarchar: ColumnReader = (vec, n, out) => {
  const buf = data(vec, n * 16);
  const bytes = new Uint8Array(buf);
  const lens = new Uint32Array(buf);
  const mask = validity(vec, n);
  for (let i = 0; i < n; i++) {
    if (!isValid(mask, i)) {
      out[i] = undefined;
      continue;
    }
    const len = lens[i * 4]!;
    const off = i * 16 + 4;
    let s = '';
    if (len <= 12) {
      let j = 0;
      // Short ASCII (host names, tags) is the common case; += on short strings beats TextDecoder.
      for (; j < len; j++) {
        const c = bytes[off + j]!;
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (j < len) s = textDecoder.decode(bytes.subarray(off, off + len));
    } else {
      s = textDecoder.decode(duckdb.get_data_from_pointer(buf, off + 4, len));
    }
    out[i] = s;
  }
};

const RAW_READERS: Record<string, ColumnReader> = {
  TINYINT: fixed(1, (b, n) => { const a = new Int8Array(b, 0, n); return (i) => a[i]; }),
  SMALLINT: fixed(2, (b, n) => { const a = new Int16Array(b, 0, n); return (i) => a[i]; }),
  INTEGER: fixed(4, (b, n) => { const a = new Int32Array(b, 0, n); return (i) => a[i]; }),
  UTINYINT: fixed(1, (b, n) => { const a = new Uint8Array(b, 0, n); return (i) => a[i]; }),
  USMALLINT: fixed(2, (b, n) => { const a = new Uint16Array(b, 0, n); return (i) => a[i]; }),
  UINTEGER: fixed(4, (b, n) => { const a = new Uint32Array(b, 0, n); return (i) => a[i]; }),
  BIGINT: fixed(8, int64Decoder),
  FLOAT: fixed(4, (b, n) => { const a = new Float32Array(b, 0, n); return (i) => a[i]; }),
  DOUBLE: fixed(8, (b, n) => { const a = new Float64Array(b, 0, n); return (i) => a[i]; }),
  BOOLEAN: fixed(1, (b, n) => { const a = new Uint8Array(b, 0, n); return (i) => a[i] !== 0; }),
  VARCHAR: readVarchar,
  TIMESTAMP: readTimestamp,
  TIMESTAMPTZ: readTimestamp,
};

/** Reads a column of a nested or rare type through node-api values and the plan's converter. */
function readViaValues(chunk: DuckDBDataChunk, c: number, n: number, plan: TypePlan, out: unknown[]): void {
  const vec = chunk.getColumnVector(c);
  for (let r = 0; r < n; r++) {
    const v = vec.getItem(r);
    out[r] = v === null ? undefined : plan.read(v);
  }
}

/** Builds `n` row objects from decoded columns, skipping undefined values, and appends them to `rows`. */
type RowBuilder = (cols: unknown[][], n: number, rows: Point[]) => void;

/**
 * Generated per result schema for the same reason as the loader's extractor
 * (load.ts): stores with constant keys are inline-cached, `row[key] = v` with
 * a key varying per column is megamorphic. Keys are sanitised field keys
 * (identifiers, see uniqueKeys) embedded as JSON string literals.
 */
function rowBuilder(keys: readonly string[]): RowBuilder {
  const decls = keys.map((_k, c) => `const c${c} = cols[${c}];`).join('\n');
  const stores = keys.map((k, c) => `v = c${c}[i]; if (v !== undefined) r[${JSON.stringify(k)}] = v;`).join('\n');
  return new Function('cols', 'n', 'rows', `${decls}\nfor (let i = 0; i < n; i++) {\nconst r = {};\nlet v;\n${stores}\nrows.push(r);\n}`) as RowBuilder;
}

/**
 * Decodes each result chunk into column arrays (undefined for NULL and for
 * unrepresentable values) and hands them to `fn` with the chunk's row count.
 * The arrays are reused from chunk to chunk: `fn` must not keep them.
 */
export function forEachChunk(result: DuckDBMaterializedResult, plan: QueryPlan, fn: (cols: unknown[][], n: number) => void): void {
  const cols = plan.plans.map(() => [] as unknown[]);
  for (let ci = 0; ci < result.chunkCount; ci++) {
    const chunk = result.getChunk(ci);
    const n = chunk.rowCount;
    plan.plans.forEach((p, c) => readColumn(chunk, c, n, p, cols[c] as unknown[]));
    fn(cols, n);
  }
}

/** Decodes column `c` of a result chunk into `out` (undefined for NULL and unrepresentable values). */
export function readColumn(chunk: DuckDBDataChunk, c: number, n: number, plan: TypePlan, out: unknown[]): void {
  const reader = RAW_READERS[plan.target];
  if (reader !== undefined) reader(duckdb.data_chunk_get_vector(chunk.chunk, c), n, out);
  else readViaValues(chunk, c, n, plan, out);
}

/** Result rows as points: one object per row, NULLs (and unrepresentable values) omitted. */
export function readRows(result: DuckDBMaterializedResult, plan: QueryPlan): Point[] {
  const rows: Point[] = [];
  const build = rowBuilder(plan.fields.map((f: SchemaField) => f.key));
  forEachChunk(result, plan, (cols, n) => build(cols, n, rows));
  return rows;
}
