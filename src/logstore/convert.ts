import { setProp } from '../ingest/json-lex.ts';
import type { LogField, LogType } from './schema.ts';

/** A document ready to insert: column values, the JSON kept for reads, multi-valued paths. */
export interface Row {
  /** Indexed value per column, in the repo's column order (text for analyzed strings, ms for dates, 0/1 for booleans). */
  values: Array<string | number | null>;
  /** Paths holding several values, with the values (indexed through the mv table); null when none. */
  multi: Map<string, Array<string | number>> | null;
  /** The stored document: schema fields only, values as sent. */
  doc: Record<string, unknown>;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?$/;

/** Milliseconds of an RFC 3339 date (or YYYY-MM-DD), or undefined. */
export function parseDate(v: string): number | undefined {
  if (!RFC3339.test(v)) return undefined;
  const ms = Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Converts one scalar to its indexed form; a string error when it cannot. */
export function scalar(type: LogType, v: unknown): string | number | { error: string } {
  switch (type) {
    case 'string':
      if (typeof v === 'string') return v;
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      return { error: `expected a string, got ${typeof v}` };
    case 'long':
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      return { error: `expected an integer, got ${JSON.stringify(v)?.slice(0, 40)}` };
    case 'float':
      if (typeof v === 'number' && Number.isFinite(v)) return v;
      return { error: `expected a number, got ${JSON.stringify(v)?.slice(0, 40)}` };
    case 'date': {
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      const ms = typeof v === 'string' ? parseDate(v) : undefined;
      return ms ?? { error: `expected an RFC 3339 date, got ${JSON.stringify(v)?.slice(0, 40)}` };
    }
    case 'boolean':
      if (typeof v === 'boolean') return v ? 1 : 0;
      if (v === 'true' || v === 'false') return v === 'true' ? 1 : 0;
      return { error: `expected a boolean, got ${JSON.stringify(v)?.slice(0, 40)}` };
    default:
      return { error: `cannot index ${type} as a scalar` };
  }
}

/**
 * Converts a client document against the schema. Fields outside the schema
 * are dropped; null and empty arrays mean absent. Returns a Row or the
 * reason (naming the field) the document cannot be stored.
 */
export function convertDoc(input: unknown, schema: readonly LogField[], columns: ReadonlyMap<string, number>): Row | { error: string } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { error: 'a log must be a JSON object' };
  const row: Row = { values: new Array<string | number | null>(columns.size).fill(null), multi: null, doc: {} };
  const err = walk(input as Record<string, unknown>, schema, '', row, row.doc, columns);
  return err ? { error: err } : row;
}

function walk(src: Record<string, unknown>, schema: readonly LogField[], prefix: string, row: Row, out: Record<string, unknown>, columns: ReadonlyMap<string, number>): string | undefined {
  for (const f of schema) {
    const v = Object.hasOwn(src, f.key) ? src[f.key] : undefined; // own only: a key may be "constructor"
    if (v === undefined || v === null) continue;
    const path = prefix + f.key;
    if (f.valtype === 'object') {
      if (typeof v !== 'object' || Array.isArray(v)) return `field "${path}": expected an object`;
      if (f.nested && f.nested.length > 0) {
        const child: Record<string, unknown> = {};
        const e = walk(v as Record<string, unknown>, f.nested, `${path}.`, row, child, columns);
        if (e) return e;
        setProp(out, f.key, child);
      } else {
        setProp(out, f.key, v);
      }
      continue;
    }
    const col = columns.get(path) ?? -1;
    if (!Array.isArray(v)) {
      const c = scalar(f.valtype, v);
      if (typeof c === 'object') return `field "${path}": ${c.error}`;
      setProp(out, f.key, v);
      row.values[col] = c;
      continue;
    }
    const conv: Array<string | number> = [];
    for (const x of v) {
      if (x === null) continue;
      const c = scalar(f.valtype, x);
      if (typeof c === 'object') return `field "${path}": ${c.error}`;
      conv.push(c);
    }
    if (conv.length === 0) continue;
    setProp(out, f.key, v);
    if (conv.length === 1) row.values[col] = conv[0]!;
    // Analyzed text of several values is indexed as one text; exact-match types go through the mv table.
    else if (f.valtype === 'string' && (f.analyzer ?? 'standard') !== 'keyword') row.values[col] = conv.join('\n');
    else (row.multi ??= new Map()).set(path, conv);
  }
  return undefined;
}
