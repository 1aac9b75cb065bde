/**
 * Query result -> wire lines, written byte by byte from the result's vectors
 * into a LineSink: what a SQL transform appends to its destination. Strings
 * are copied as UTF-8 bytes (escaped for the destination's escape mode) and
 * integers written as digits, with no JS value per cell; doubles go through
 * String() for the shortest text that reads back as the same double. A
 * column whose type has no fast path to its field's kind (dates, nested
 * types, a column typed unlike its field) is decoded as read.ts decodes it
 * and encoded by wireValue.
 *
 * Output and refusals are exactly those of forEachChunk + encodeColumns (a
 * property test checks it); this only skips the JS strings in between, which
 * were most of a row-wise transform's run (docs/performance.md).
 */
import duckdb from '@duckdb/node-bindings';
import type { DuckDBDataChunk, DuckDBMaterializedResult } from '@duckdb/node-api';
import { ApiError } from '../errors.ts';
import { K_BOOLEAN, K_FLOAT, K_LONG, K_STRING, type CompiledField, type CompiledSchema } from '../ingest/compiled.ts';
import { wireValue, type LineSink } from '../ingest/encode.ts';
import { quote } from '../ingest/scalars.ts';
import type { QueryPlan } from './check.ts';
import { data, isValid, readColumn, validity } from './read.ts';
import type { TypePlan } from './types.ts';

/** How a column is written. */
const STR = 0;
const INT = 1;
const INT64 = 2;
const REAL = 3;
const BOOL = 4;
/** Decoded to JS values, written through wireValue. */
const VALUES = 5;

const NARROW_INTS: Record<string, { new (b: ArrayBuffer, o: number, n: number): ArrayLike<number>; BYTES_PER_ELEMENT: number }> = {
  TINYINT: Int8Array, SMALLINT: Int16Array, INTEGER: Int32Array, UTINYINT: Uint8Array, USMALLINT: Uint16Array, UINTEGER: Uint32Array,
};

const NO_BYTES = new Uint8Array(0);
const NO_WORDS = new Int32Array(0);
const NO_BIG = new BigInt64Array(0);
const NO_BUF = new ArrayBuffer(0);

/** The mode for a column of DuckDB type `target` stored into a field of `kind`. */
function modeOf(target: string, kind: number | undefined): number {
  if (target === 'VARCHAR' && kind === K_STRING) return STR;
  if (target === 'BIGINT' && kind === K_LONG) return INT64;
  if (NARROW_INTS[target] !== undefined && kind === K_LONG) return INT;
  if ((target === 'DOUBLE' || target === 'FLOAT') && kind === K_FLOAT) return REAL;
  if (target === 'BOOLEAN' && kind === K_BOOLEAN) return BOOL;
  return VALUES;
}

/** One result column, set up per chunk. All fields are always set, so the row loop sees one shape. */
class Column {
  mask: Uint8Array | null = null;
  buf: ArrayBuffer = NO_BUF;
  bytes: Uint8Array = NO_BYTES;
  lens: Uint32Array = new Uint32Array(0);
  nums: ArrayLike<number> = NO_BYTES;
  words: Int32Array = NO_WORDS;
  big: BigInt64Array = NO_BIG;
  values: unknown[] = [];

  constructor(
    readonly key: string,
    readonly field: CompiledField | undefined,
    /** `keyEq` as bytes. */
    readonly keyEq: Uint8Array,
    readonly mode: number,
    readonly target: string,
    readonly plan: TypePlan,
  ) {}

  load(chunk: DuckDBDataChunk, c: number, n: number): void {
    if (this.mode === VALUES) {
      readColumn(chunk, c, n, this.plan, this.values);
      return;
    }
    const vec = duckdb.data_chunk_get_vector(chunk.chunk, c);
    this.mask = validity(vec, n);
    switch (this.mode) {
      case STR:
        this.buf = data(vec, n * 16);
        this.bytes = new Uint8Array(this.buf);
        this.lens = new Uint32Array(this.buf);
        break;
      case INT64:
        this.buf = data(vec, n * 8);
        this.words = new Int32Array(this.buf, 0, n * 2);
        this.big = new BigInt64Array(this.buf, 0, n);
        break;
      case INT: {
        const T = NARROW_INTS[this.target]!;
        this.nums = new T(data(vec, n * T.BYTES_PER_ELEMENT), 0, n);
        break;
      }
      case REAL:
        this.nums = this.target === 'DOUBLE' ? new Float64Array(data(vec, n * 8), 0, n) : new Float32Array(data(vec, n * 4), 0, n);
        break;
      default: // BOOL
        this.bytes = new Uint8Array(data(vec, n), 0, n);
    }
  }

  present(i: number): boolean {
    return this.mode === VALUES ? this.values[i] !== undefined : isValid(this.mask, i);
  }
}

/** Writes the decimal digits of a safe integer at sink.len (room for 21 bytes must be ensured). */
function writeInt(sink: LineSink, v: number): void {
  const buf = sink.buf;
  let p = sink.len;
  if (v < 0) {
    buf[p++] = 45;
    v = -v;
  }
  let digits = 1;
  for (let t = v; t >= 10; t = Math.floor(t / 10)) digits++;
  let q = p + digits;
  sink.len = q;
  while (v >= 10) {
    const d = Math.floor(v / 10);
    buf[--q] = 48 + (v - d * 10);
    v = d;
  }
  buf[--q] = 48 + v;
}

/** Writes a JS string as UTF-8. */
function writeText(sink: LineSink, s: string): void {
  sink.ensure(s.length * 3);
  const buf = sink.buf;
  const start = sink.len;
  for (let j = 0; j < s.length; j++) {
    const ch = s.charCodeAt(j);
    if (ch >= 0x80) {
      sink.len += buf.write(s.slice(j), start + j, 'utf8') + j;
      return;
    }
    buf[start + j] = ch;
  }
  sink.len = start + s.length;
}

/**
 * Copies `len` UTF-8 bytes from `src` at `off`, escaped as escapes.ts
 * escapeText does: TAB, LF, CR and backslash when `all` (the reference
 * mode), else only TAB and LF (the official modes).
 */
function writeEscaped(sink: LineSink, src: Uint8Array, off: number, len: number, all: boolean): void {
  sink.ensure(2 * len);
  const buf = sink.buf;
  let p = sink.len;
  for (let j = off, end = off + len; j < end; j++) {
    const b = src[j]!;
    if (b === 9 || b === 10 || (all && (b === 92 || b === 13))) {
      buf[p++] = 92;
      buf[p++] = b === 92 ? 92 : b === 9 ? 116 : b === 10 ? 110 : 114;
    } else {
      buf[p++] = b;
    }
  }
  sink.len = p;
}

const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
const LIMIT = 2 ** 49;

/**
 * Writes a non-integer double the way String() does when its shortest text
 * has few decimals (a CPU percentage, a price), without making a string;
 * returns false for the rest, which String() then writes. String() was half
 * of a projection's encoding.
 *
 * Why the text is String()'s: for 1e-6 <= |v| (fixed notation) String()
 * picks the fewest significant digits that read back as v, which for a
 * non-integer is the fewest decimals k. For |v|·10^k < 2^49 at most one
 * k-decimal number reads back as v (ulp(v)·10^k < 1/8), Math.round finds it
 * (the product's error is under 1/32), and m / 10^k, one correctly rounded
 * division of exact integers, rounds exactly as reading the text does.
 * Checked against String() by a property test.
 */
export function writeShortReal(sink: LineSink, v: number): boolean {
  const a = v < 0 ? -v : v;
  if (!(a >= 1e-6)) return false;
  for (let k = 1; k < POW10.length; k++) {
    const p = POW10[k]!;
    const scaled = a * p;
    if (scaled >= LIMIT) return false;
    const m = Math.round(scaled);
    if (m / p !== a) continue;
    sink.ensure(40);
    if (v < 0) sink.buf[sink.len++] = 45;
    const ip = Math.floor(m / p);
    writeInt(sink, ip);
    const buf = sink.buf;
    let q = sink.len + k + 1;
    buf[sink.len] = 46;
    sink.len = q;
    for (let f = m - ip * p, j = 0; j < k; j++) {
      const d = Math.floor(f / 10);
      buf[--q] = 48 + (f - d * 10);
      f = d;
    }
    return true;
  }
  return false;
}

function writeValue(sink: LineSink, col: Column, f: CompiledField, i: number): void {
  switch (col.mode) {
    case STR: {
      const len = col.lens[i * 4]!;
      const all = f.escapes === 'reference';
      if (len <= 12) writeEscaped(sink, col.bytes, i * 16 + 4, len, all);
      else writeEscaped(sink, duckdb.get_data_from_pointer(col.buf, i * 16 + 8, len), 0, len, all);
      return;
    }
    case INT64: {
      const hi = col.words[2 * i + 1]!;
      sink.ensure(21);
      if (hi >= -2097152 && hi < 2097152) writeInt(sink, hi * 4294967296 + (col.words[2 * i]! >>> 0));
      else writeText(sink, col.big[i]!.toString());
      return;
    }
    case INT:
      sink.ensure(21);
      writeInt(sink, col.nums[i]!);
      return;
    case REAL: {
      const v = col.nums[i]!;
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
        sink.ensure(21);
        writeInt(sink, v);
      } else if (!writeShortReal(sink, v)) {
        writeText(sink, wireValue(f, v)); // refuses NaN and infinities as encodeColumns does
      }
      return;
    }
    case BOOL:
      writeText(sink, col.bytes[i] !== 0 ? 'true' : 'false');
      return;
    default:
      writeText(sink, wireValue(f, col.values[i]));
  }
}

/**
 * Encodes every row of `result` (checked by `plan`) for a repo of `schema`
 * as wire lines into `sink`. Rows without any value are skipped. `chunks`
 * limits the work to result chunks [from, to), so a caller can encode a big
 * result in steps and let the event loop run in between.
 *
 * @throws ApiError E18110 for a missing required field or a value that does
 *   not fit its field; E18111 for a value in a column the schema lacks
 */
export function encodeResult(
  result: DuckDBMaterializedResult,
  plan: QueryPlan,
  schema: CompiledSchema,
  sink: LineSink,
  chunks: { from: number; to: number } = { from: 0, to: result.chunkCount },
): void {
  const cols = plan.fields.map((pf, c) => {
    const f = schema.byKey.get(pf.key);
    const tp = plan.plans[c]!;
    return new Column(pf.key, f, Buffer.from(f?.keyEq ?? ''), modeOf(tp.target, f?.kind), tp.target, tp);
  });
  let checkedRequired = false;
  for (let ci = chunks.from; ci < Math.min(chunks.to, result.chunkCount); ci++) {
    const chunk = result.getChunk(ci);
    const n = chunk.rowCount;
    if (n === 0) continue;
    if (!checkedRequired) {
      for (const r of schema.required) {
        if (!cols.some((col) => col.field === r)) throw new ApiError('E18110', `field "${r.path}": required field is missing`);
      }
      checkedRequired = true;
    }
    for (let c = 0; c < cols.length; c++) cols[c]!.load(chunk, c, n);
    for (let i = 0; i < n; i++) {
      const rowStart = sink.len;
      if (sink.count > 0) {
        sink.ensure(1);
        sink.buf[sink.len++] = 10;
      }
      const bodyStart = sink.len;
      for (let c = 0; c < cols.length; c++) {
        const col = cols[c]!;
        const f = col.field;
        if (!col.present(i)) {
          if (f?.required === true) throw new ApiError('E18110', `field "${f.path}": required field is missing`);
          continue;
        }
        if (f === undefined) throw new ApiError('E18111', `field ${quote(col.key)}: not in the repo schema`);
        const key = col.keyEq;
        sink.ensure(key.length + 1);
        const buf = sink.buf;
        let p = sink.len;
        if (p > bodyStart) buf[p++] = 9;
        for (let k = 0; k < key.length; k++) buf[p++] = key[k]!;
        sink.len = p;
        writeValue(sink, col, f, i);
      }
      if (sink.len === bodyStart) {
        sink.len = rowStart;
        continue;
      }
      if (sink.buf[sink.len - 1] === 13 && schema.escapes === 'reference') {
        sink.ensure(1);
        sink.buf[sink.len++] = 9; // see escapes.ts lineEnd
      }
      sink.count++;
    }
  }
}
