/**
 * Parquet rows straight from stored lines: one scan per line finds each
 * field's value range, and the values are written into DuckDB data chunks
 * without the intermediate column arrays of decodeColumns + appendRows.
 * Short ASCII strings without escapes go from the line into DuckDB's
 * inline string_t bytes without a substring; longs of up to 15 digits are
 * parsed in place. It gives exactly what decodeColumns (src/ingest/points.ts)
 * and the loader's writers (src/sql/load.ts) give, for top-level scalar
 * columns (string, long, float, boolean, date) in every escape mode;
 * arrays, maps, jsonstring and nested references keep that path
 * (fusedLoader answers undefined). test/exports-kodo-fast.test.ts proves
 * the equality on generated lines; docs/decisions/013 has the numbers.
 */
import duckdb from '@duckdb/node-bindings';
import { DuckDBDataChunk, type DuckDBAppender } from '@duckdb/node-api';
import { K_BOOLEAN, K_DATE, K_FLOAT, K_LONG, K_STRING, type CompiledSchema } from '../../ingest/compiled.ts';
import { unescapeText, type EscapeMode } from '../../ingest/escapes.ts';
import { decodeLong, isFloat, isLong } from '../../ingest/scalars.ts';
import { assignHeapString, copyData, finishStrings, INLINE_MAX, STRING_T, Validity } from '../../sql/load.ts';
import { writeInt64, writeRfc3339Micros } from '../../sql/time.ts';
import type { OutColumn } from './columns.ts';

/** Appends stored lines [start, start + n) as rows of the appender's table (the output columns). */
export type FusedLoader = (appender: DuckDBAppender, lines: readonly string[], start: number, n: number) => void;

/** Writes one column of a chunk: rows' values are line[vs[i], ve[i]), vs[i] < 0 = absent. */
type ColumnWriter = (vec: duckdb.Vector, lines: readonly string[], start: number, vs: Int32Array, ve: Int32Array, n: number) => void;

const SCALARS = new Set([K_STRING, K_LONG, K_FLOAT, K_BOOLEAN, K_DATE]);

const longWriter: ColumnWriter = (vec, lines, start, vs, ve, n) => {
  const out = new Int32Array(n * 2);
  const nulls = new Validity(n);
  let big: BigInt64Array | null = null;
  for (let i = 0; i < n; i++) {
    const s = vs[i]!;
    if (s < 0) {
      nulls.setNull(i);
      continue;
    }
    const line = lines[start + i]!;
    const e = ve[i]!;
    let p = s;
    const c0 = line.charCodeAt(p);
    if (c0 === 45 || c0 === 43) p++;
    let v = 0;
    let q = p;
    if (e - p <= 15 && e > p) {
      for (; q < e; q++) {
        const d = line.charCodeAt(q) - 48;
        if (d < 0 || d > 9) break;
        v = v * 10 + d;
      }
    }
    if (q === e && e > p) {
      writeInt64(out, i, c0 === 45 && v !== 0 ? -v : v);
    } else if (isLong(line, s, e)) {
      const x = decodeLong(line.slice(s, e));
      if (typeof x === 'number') writeInt64(out, i, x);
      else (big ??= new BigInt64Array(out.buffer))[i] = x;
    } else {
      nulls.setNull(i);
    }
  }
  copyData(vec, out);
  nulls.flush(vec);
};

const floatWriter: ColumnWriter = (vec, lines, start, vs, ve, n) => {
  const out = new Float64Array(n);
  const nulls = new Validity(n);
  for (let i = 0; i < n; i++) {
    const s = vs[i]!;
    const line = lines[start + i]!;
    if (s >= 0 && isFloat(line, s, ve[i]!)) out[i] = Number(line.slice(s, ve[i]));
    else nulls.setNull(i);
  }
  copyData(vec, out);
  nulls.flush(vec);
};

const boolWriter: ColumnWriter = (vec, lines, start, vs, ve, n) => {
  const out = new Uint8Array(n);
  const nulls = new Validity(n);
  for (let i = 0; i < n; i++) {
    const s = vs[i]!;
    const len = ve[i]! - s;
    const line = lines[start + i]!;
    if (s >= 0 && len === 4 && line.startsWith('true', s)) out[i] = 1;
    else if (!(s >= 0 && len === 5 && line.startsWith('false', s))) nulls.setNull(i);
  }
  copyData(vec, out);
  nulls.flush(vec);
};

const dateWriter: ColumnWriter = (vec, lines, start, vs, ve, n) => {
  const out = new Int32Array(n * 2);
  const nulls = new Validity(n);
  for (let i = 0; i < n; i++) {
    const s = vs[i]!;
    if (s < 0 || !writeRfc3339Micros(lines[start + i]!.slice(s, ve[i]), out, i)) nulls.setNull(i);
  }
  copyData(vec, out);
  nulls.flush(vec);
};

/** Strings: inline straight from the line when short, ASCII and free of escapes; the rest unescaped and assigned once per distinct value. */
function stringWriter(mode: EscapeMode): ColumnWriter {
  const plainBackslash = mode === 'verbatim';
  return (vec, lines, start, vs, ve, n) => {
    const bytes = new Uint8Array(n * STRING_T);
    const lens = new Uint32Array(bytes.buffer);
    const nulls = new Validity(n);
    const firstRow = new Map<string, number>();
    const repeats: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = vs[i]!;
      if (s < 0) {
        nulls.setNull(i);
        continue;
      }
      const line = lines[start + i]!;
      const len = ve[i]! - s;
      if (len <= INLINE_MAX) {
        const base = i * STRING_T + 4;
        let j = 0;
        for (; j < len; j++) {
          const c = line.charCodeAt(s + j);
          if (c >= 0x80 || (c === 92 && !plainBackslash)) break;
          bytes[base + j] = c;
        }
        if (j === len) {
          lens[i * 4] = len;
          continue;
        }
        bytes.fill(0, base, base + j);
      }
      const text = unescapeText(line.slice(s, ve[i]), mode);
      const tl = text.length;
      if (tl <= INLINE_MAX) {
        let j = 0;
        for (; j < tl && text.charCodeAt(j) < 0x80; j++) bytes[i * STRING_T + 4 + j] = text.charCodeAt(j);
        if (j === tl) {
          lens[i * 4] = tl;
          continue;
        }
        bytes.fill(0, i * STRING_T + 4, i * STRING_T + 4 + j);
      }
      assignHeapString(vec, i, text, firstRow, repeats);
    }
    finishStrings(vec, bytes, n, firstRow, repeats, nulls);
  };
}

function writerOf(kind: number, mode: EscapeMode): ColumnWriter {
  switch (kind) {
    case K_LONG: return longWriter;
    case K_FLOAT: return floatWriter;
    case K_BOOLEAN: return boolWriter;
    case K_DATE: return dateWriter;
    default: return stringWriter(mode);
  }
}

/**
 * The fused loader of the output columns, or undefined when a column needs
 * the general decoder (not a top-level scalar field).
 */
export function fusedLoader(cols: readonly OutColumn[], schema: CompiledSchema): FusedLoader | undefined {
  const tops: number[] = [];
  const writers: ColumnWriter[] = [];
  for (const c of cols) {
    const f = schema.fields[c.top];
    if (c.rest.length > 0 || f === undefined || !SCALARS.has(f.kind)) return undefined;
    tops.push(c.top);
    writers.push(writerOf(f.kind, schema.escapes));
  }
  if (cols.length === 0) return undefined;
  const fields = schema.fields;
  const nf = fields.length;
  return (appender, lines, start, count) => {
    const size = duckdb.vector_size();
    const types = cols.map((_c, i) => appender.columnType(i));
    // Value ranges per top-level field, row-major within a chunk: vs[f * size + row].
    const vsAll = new Int32Array(nf * size);
    const veAll = new Int32Array(nf * size);
    for (let from = 0; from < count; from += size) {
      const n = Math.min(size, count - from);
      vsAll.fill(-1);
      for (let r = 0; r < n; r++) {
        // The key scan of decodeColumns: the next field's `key=` first, else a lookup.
        const line = lines[start + from + r]!;
        const len = line.length;
        let pos = 0;
        let guess = 0;
        while (pos < len) {
          let tab = line.indexOf('\t', pos);
          if (tab < 0) tab = len;
          let f = fields[guess];
          let at: number;
          if (f !== undefined && line.startsWith(f.keyEq, pos)) {
            at = pos + f.keyEq.length;
          } else {
            const eq = line.indexOf('=', pos);
            f = eq > pos && eq < tab ? schema.byKey.get(line.slice(pos, eq)) : undefined;
            at = eq + 1;
          }
          if (f !== undefined) {
            vsAll[f.index * size + r] = at;
            veAll[f.index * size + r] = tab;
            guess = f.index + 1;
          }
          pos = tab + 1;
        }
      }
      const chunk = DuckDBDataChunk.create(types, n);
      for (let c = 0; c < writers.length; c++) {
        const t = tops[c]! * size;
        writers[c]!(duckdb.data_chunk_get_vector(chunk.chunk, c), lines, start + from, vsAll.subarray(t, t + size), veAll.subarray(t, t + size), n);
      }
      appender.appendDataChunk(chunk);
    }
  };
}
