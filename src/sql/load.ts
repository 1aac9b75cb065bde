/**
 * Columnar loader: fills DuckDB data chunks from column arrays (extracted
 * from decoded points, or decoded straight from stored lines by
 * decodeColumns) and hands them to an appender.
 *
 * Why not the row-wise Appender or DuckDBVector.setItem: both cost a native
 * call (and for BIGINT a BigInt allocation) per value; here fixed-width
 * columns are written into typed arrays and copied into the vector with one
 * memcpy per chunk, and short ASCII strings are written inline in DuckDB's
 * 16-byte string_t layout. Measured numbers are in
 * docs/decisions/003-sql-engine-and-type-mapping.md. The layouts assume a
 * little-endian host, as are all platforms DuckDB ships Node binaries for.
 */
import duckdb from '@duckdb/node-bindings';
import { DuckDBDataChunk, type DuckDBAppender } from '@duckdb/node-api';
import type { Point, SchemaField } from '../ingest/types.ts';
import { writeInt64, writeRfc3339Micros } from './time.ts';

/** Writes `n` values (undefined/null = NULL) into a raw vector. */
type Writer = (vec: duckdb.Vector, vals: readonly unknown[], n: number) => void;

/** string_t: 4-byte length, then up to 12 inline bytes (or a 4-byte prefix and a pointer). */
export const STRING_T = 16;
export const INLINE_MAX = 12;

/** Validity bitmap words (uint64 as little-endian uint32 pairs), created on the first NULL. */
export class Validity {
  private words: Uint32Array | null = null;
  constructor(private readonly n: number) {}
  setNull(i: number): void {
    if (this.words === null) this.words = new Uint32Array(Math.ceil(this.n / 64) * 2).fill(0xffffffff);
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }
  flush(vec: duckdb.Vector): void {
    if (this.words === null) return;
    duckdb.vector_ensure_validity_writable(vec);
    duckdb.copy_data_to_vector_validity(vec, 0, this.words.buffer as ArrayBuffer, 0, this.words.byteLength);
  }
}

/** Copies a typed array into a vector's data buffer (one memcpy). */
export function copyData(vec: duckdb.Vector, data: ArrayBufferView): void {
  duckdb.copy_data_to_vector(vec, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
}

const writeBigint: Writer = (vec, vals, n) => {
  const out = new Int32Array(n * 2);
  const nulls = new Validity(n);
  let big: BigInt64Array | null = null;
  for (let i = 0; i < n; i++) {
    const v = vals[i];
    if (typeof v === 'number' && Number.isSafeInteger(v)) writeInt64(out, i, v);
    else if (typeof v === 'bigint' && BigInt.asIntN(64, v) === v) (big ??= new BigInt64Array(out.buffer))[i] = v;
    else if (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < 2 ** 63) (big ??= new BigInt64Array(out.buffer))[i] = BigInt(Math.trunc(v));
    else nulls.setNull(i);
  }
  copyData(vec, out);
  nulls.flush(vec);
};

const writeDouble: Writer = (vec, vals, n) => {
  const out = new Float64Array(n);
  const nulls = new Validity(n);
  for (let i = 0; i < n; i++) {
    const v = vals[i];
    if (typeof v === 'number') out[i] = v;
    else if (typeof v === 'bigint') out[i] = Number(v);
    else nulls.setNull(i);
  }
  copyData(vec, out);
  nulls.flush(vec);
};

const writeBoolean: Writer = (vec, vals, n) => {
  const out = new Uint8Array(n);
  const nulls = new Validity(n);
  for (let i = 0; i < n; i++) {
    const v = vals[i];
    if (typeof v === 'boolean') out[i] = v ? 1 : 0;
    else nulls.setNull(i);
  }
  copyData(vec, out);
  nulls.flush(vec);
};

const writeTimestamp: Writer = (vec, vals, n) => {
  const out = new Int32Array(n * 2);
  const nulls = new Validity(n);
  for (let i = 0; i < n; i++) {
    const v = vals[i];
    if (typeof v === 'string') {
      if (!writeRfc3339Micros(v, out, i)) nulls.setNull(i);
    } else if (v instanceof Date && !Number.isNaN(v.getTime())) {
      writeInt64(out, i, v.getTime() * 1000);
    } else {
      nulls.setNull(i);
    }
  }
  copyData(vec, out);
  nulls.flush(vec);
};

/**
 * Strings: ASCII up to 12 bytes inline; the rest through DuckDB, which copies
 * them into the vector's heap. A long string repeated in the chunk (hosts,
 * regions, URLs) is assigned once and its string_t (length, prefix, pointer
 * into that heap) copied to the other rows: one native call per distinct value.
 */
function stringWriter(toText: (v: unknown) => string | undefined): Writer {
  return (vec, vals, n) => {
    const bytes = new Uint8Array(n * STRING_T);
    const lens = new Uint32Array(bytes.buffer);
    const nulls = new Validity(n);
    const firstRow = new Map<string, number>();
    const repeats: number[] = []; // pairs: row, row of its first occurrence
    for (let i = 0; i < n; i++) {
      const s = toText(vals[i]);
      if (s === undefined) {
        nulls.setNull(i);
        continue;
      }
      const len = s.length;
      if (len <= INLINE_MAX) {
        const base = i * STRING_T + 4;
        let j = 0;
        for (; j < len; j++) {
          const c = s.charCodeAt(j);
          if (c >= 0x80) break;
          bytes[base + j] = c;
        }
        if (j === len) {
          lens[i * 4] = len;
          continue;
        }
        // Non-ASCII: clear the partial bytes (inline padding must stay zero) and take the slow path.
        bytes.fill(0, base, base + j);
      }
      assignHeapString(vec, i, s, firstRow, repeats);
    }
    finishStrings(vec, bytes, n, firstRow, repeats, nulls);
  };
}

/**
 * A string that cannot be inline: assigned through DuckDB the first time it
 * occurs in the chunk; later rows with the same text are recorded in
 * `repeats` (pairs: row, row of its first occurrence) for finishStrings.
 */
export function assignHeapString(vec: duckdb.Vector, i: number, s: string, firstRow: Map<string, number>, repeats: number[]): void {
  const first = firstRow.get(s);
  if (first === undefined) {
    firstRow.set(s, i);
    duckdb.vector_assign_string_element(vec, i, s);
  } else {
    repeats.push(i, first);
  }
}

/** Writes a string column's string_t array (inline strings in `bytes`, heap strings via assignHeapString) and its validity. */
export function finishStrings(vec: duckdb.Vector, bytes: Uint8Array, n: number, firstRow: Map<string, number>, repeats: number[], nulls: Validity): void {
  if (firstRow.size > 0) {
    // Read back the string_t DuckDB wrote for each first occurrence, so the
    // memcpy below keeps them, and reuse them for the repeats.
    const assigned = duckdb.vector_get_data(vec, n * STRING_T);
    for (const row of firstRow.values()) bytes.set(assigned.subarray(row * STRING_T, (row + 1) * STRING_T), row * STRING_T);
    for (let k = 0; k < repeats.length; k += 2) {
      const from = repeats[k + 1]! * STRING_T;
      bytes.copyWithin(repeats[k]! * STRING_T, from, from + STRING_T);
    }
  }
  copyData(vec, bytes);
  nulls.flush(vec);
}

const asText = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const asJsonText = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : v === undefined || v === null ? undefined : JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

/** LIST: offsets/lengths into the child vector, then the flattened elements through the element writer. */
function listWriter(elem: Writer): Writer {
  return (vec, vals, n) => {
    const entries = new Uint32Array(n * 4); // per row: uint64 offset, uint64 length
    const nulls = new Validity(n);
    const flat: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const v = vals[i];
      if (!Array.isArray(v)) {
        nulls.setNull(i);
        continue;
      }
      entries[i * 4] = flat.length;
      entries[i * 4 + 2] = v.length;
      for (const x of v) flat.push(x);
    }
    duckdb.list_vector_reserve(vec, flat.length);
    duckdb.list_vector_set_size(vec, flat.length);
    if (flat.length > 0) elem(duckdb.list_vector_get_child(vec), flat, flat.length);
    copyData(vec, entries);
    nulls.flush(vec);
  };
}

/** STRUCT: one child vector per nested field; a missing map is NULL and so are its children. */
function structWriter(schema: readonly SchemaField[]): Writer {
  const children = schema.map((f) => ({ key: f.key, write: writerFor(f) }));
  return (vec, vals, n) => {
    const nulls = new Validity(n);
    for (let i = 0; i < n; i++) {
      const v = vals[i];
      if (v === null || typeof v !== 'object') nulls.setNull(i);
    }
    children.forEach((c, j) => {
      const sub = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        const v = vals[i];
        sub[i] = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[c.key] : undefined;
      }
      c.write(duckdb.struct_vector_get_child(vec, j), sub, n);
    });
    nulls.flush(vec);
  };
}

const ELEM_WRITERS = { long: writeBigint, float: writeDouble, string: stringWriter(asText) };

/** The writer for a repo field; must agree with inputTypeSql in types.ts. */
export function writerFor(field: SchemaField): Writer {
  switch (field.valtype) {
    case 'long': return writeBigint;
    case 'float': return writeDouble;
    case 'string': return stringWriter(asText);
    case 'jsonstring': return stringWriter(asJsonText);
    case 'date': return writeTimestamp;
    case 'boolean': return writeBoolean;
    case 'array': return listWriter(ELEM_WRITERS[field.elemtype ?? 'string']);
    case 'map': return field.schema && field.schema.length > 0 ? structWriter(field.schema) : stringWriter(asJsonText);
  }
}

const IDENT = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Copies the schema's fields of `points[start..start+n)` into one array per
 * column. Generated per schema because a constant property name is a
 * monomorphic inline-cached load, while `point[key]` with a key that varies
 * per column is megamorphic: about 3.5x faster on 1M points x 5 fields.
 * Keys are embedded as JSON string literals and must also be identifiers
 * (repo field keys always are); anything else falls back to keyed access.
 */
export type Extractor = (points: readonly Point[], start: number, n: number, cols: unknown[][]) => void;

export function extractorFor(schema: readonly SchemaField[]): Extractor {
  const keys = schema.map((f) => f.key);
  if (!keys.every((k) => IDENT.test(k))) {
    return (points, start, n, cols) => {
      keys.forEach((key, c) => {
        const col = cols[c] as unknown[];
        for (let i = 0; i < n; i++) col[i] = (points[start + i] as Point)[key];
      });
    };
  }
  const decls = keys.map((_k, c) => `const c${c} = cols[${c}];`).join('\n');
  const stores = keys.map((k, c) => `c${c}[i] = p[${JSON.stringify(k)}];`).join('\n');
  return new Function('points', 'start', 'n', 'cols', `${decls}\nfor (let i = 0; i < n; i++) {\nconst p = points[start + i];\n${stores}\n}`) as Extractor;
}

/**
 * Fills `cols` (one array per schema field) with rows [start, start + n):
 * undefined or null for NULL.
 */
export type RowFiller = (start: number, n: number, cols: unknown[][]) => void;

/**
 * Appends `count` rows, given by `fill` a vector's worth at a time, to the
 * appender's table, whose columns are `schema` in order (as created by
 * createTableSql). Does not flush or close the appender.
 */
export function appendRows(appender: DuckDBAppender, schema: readonly SchemaField[], count: number, fill: RowFiller): void {
  const size = duckdb.vector_size();
  const types = schema.map((_f, i) => appender.columnType(i));
  const writers = schema.map(writerFor);
  const cols = schema.map(() => new Array<unknown>(size));
  for (let start = 0; start < count; start += size) {
    const n = Math.min(size, count - start);
    fill(start, n, cols);
    // A fresh chunk per batch: reusing one would need list child sizes and string heaps reset by hand.
    const chunk = DuckDBDataChunk.create(types, n);
    for (let c = 0; c < schema.length; c++) {
      (writers[c] as Writer)(duckdb.data_chunk_get_vector(chunk.chunk, c), cols[c] as unknown[], n);
    }
    appender.appendDataChunk(chunk);
  }
}
