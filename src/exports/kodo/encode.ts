/**
 * Row encoders of the line formats (json, csv, text): each turns output
 * columns into one string per row, without the trailing newline.
 *
 * json  one object per line, output columns as keys; long as JSON numbers
 *       (exact beyond 2^53), dates as the RFC 3339 text stored, arrays and
 *       maps as JSON; absent values are left out.
 * csv   RFC 4180 fields joined by the spec's delimiter; a field holding the
 *       delimiter, a quote or a line break is quoted with quotes doubled;
 *       absent = empty field; arrays and maps as JSON text. Files start with
 *       a header line of the column names.
 * text  the data-push text format: `column=value` pairs joined by TAB,
 *       values escaped as in data push (\t \n \r \\). Without `fields` a
 *       record is written exactly as stored.
 */
import { compileSchema } from '../../ingest/compiled.ts';
import { wireValue } from '../../ingest/encode.ts';
import type { OutColumn } from './columns.ts';
import type { KodoFormat } from './spec.ts';

/** Encodes rows [0, n) of the column arrays into `out` (one string per row). */
export type RowEncoder = (vals: readonly (readonly unknown[])[], lines: readonly string[], start: number, n: number, out: string[]) => void;

/** JSON text of one value (undefined for absent); bigint longs stay exact, nested nulls are left out of maps. */
export function jsonValue(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string': return JSON.stringify(v);
    case 'number': return Number.isFinite(v) ? String(v) : 'null';
    case 'bigint': return v.toString();
    case 'boolean': return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return undefined;
      if (Array.isArray(v)) return '[' + v.map((x) => jsonValue(x) ?? 'null').join(',') + ']';
      let s = '';
      for (const [k, x] of Object.entries(v)) {
        const t = jsonValue(x);
        if (t !== undefined) s = s === '' ? `${JSON.stringify(k)}:${t}` : `${s},${JSON.stringify(k)}:${t}`;
      }
      return `{${s}}`;
    }
    default: return undefined;
  }
}

function jsonEncoder(cols: readonly OutColumn[]): RowEncoder {
  const keys = cols.map((c) => JSON.stringify(c.name) + ':');
  return (vals, _lines, _start, n, out) => {
    for (let i = 0; i < n; i++) {
      let s = '';
      for (let c = 0; c < keys.length; c++) {
        const t = jsonValue((vals[c] as unknown[])[i]);
        if (t === undefined) continue;
        s = s === '' ? keys[c]! + t : `${s},${keys[c]!}${t}`;
      }
      out.push(`{${s}}`);
    }
  };
}

/** One csv field. */
export function csvField(v: unknown, delimiter: string): string {
  let t: string;
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') t = v;
  else if (typeof v === 'object') t = jsonValue(v) ?? '';
  else t = String(v);
  if (t.includes('"') || t.includes('\n') || t.includes('\r') || t.includes(delimiter)) return '"' + t.replaceAll('"', '""') + '"';
  return t;
}

/** The csv header line. */
export function csvHeader(cols: readonly OutColumn[], delimiter: string): string {
  return cols.map((c) => csvField(c.name, delimiter)).join(delimiter);
}

function csvEncoder(delimiter: string): RowEncoder {
  return (vals, _lines, _start, n, out) => {
    for (let i = 0; i < n; i++) {
      let s = '';
      for (let c = 0; c < vals.length; c++) s = c === 0 ? csvField((vals[c] as unknown[])[i], delimiter) : s + delimiter + csvField((vals[c] as unknown[])[i], delimiter);
      out.push(s);
    }
  };
}

function textEncoder(cols: readonly OutColumn[], verbatim: boolean): RowEncoder {
  if (verbatim) {
    return (_vals, lines, start, n, out) => {
      for (let i = 0; i < n; i++) out.push(lines[start + i] as string);
    };
  }
  const compiled = compileSchema(cols.map((c) => c.field)).fields;
  return (vals, _lines, _start, n, out) => {
    for (let i = 0; i < n; i++) {
      let s = '';
      for (let c = 0; c < compiled.length; c++) {
        const v = (vals[c] as unknown[])[i];
        if (v === undefined || v === null) continue;
        const f = compiled[c]!;
        s = s === '' ? f.keyEq + wireValue(f, v) : `${s}\t${f.keyEq}${wireValue(f, v)}`;
      }
      out.push(s);
    }
  };
}

/**
 * The row encoder of a line format. `verbatim` (text without `fields`)
 * copies the stored lines.
 */
export function rowEncoder(format: Exclude<KodoFormat, 'parquet'>, cols: readonly OutColumn[], delimiter: string, verbatim: boolean): RowEncoder {
  if (format === 'json') return jsonEncoder(cols);
  if (format === 'csv') return csvEncoder(delimiter);
  return textEncoder(cols, verbatim);
}
