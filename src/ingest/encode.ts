/**
 * Encoding JS values into the point wire format: the inverse of decodeLine,
 * used to store rows computed by transforms. Output always passes
 * parsePoints (apart from its size limit), so stored data has one shape no
 * matter where it came from.
 */
import { ApiError } from '../errors.ts';
import {
  K_ARRAY, K_BOOLEAN, K_DATE, K_FLOAT, K_JSONSTRING, K_LONG, K_MAP, K_STRING, KIND_NAME,
  nextStamp, type CompiledField, type CompiledSchema,
} from './compiled.ts';
import { escapeJson, escapeText, lineEnd } from './escapes.ts';
import { isDate, isFloat, isLong, quote } from './scalars.ts';
import type { Point } from './types.ts';

function misfit(path: string, v: unknown, what: string): never {
  let shownValue: string;
  try {
    // Numbers as JS writes them: JSON would show NaN and the infinities as "null".
    shownValue = typeof v === 'bigint' ? `${v}n` : typeof v === 'string' ? v : typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    shownValue = String(v);
  }
  throw new ApiError('E18110', `field "${path}": ${quote(shownValue)} is not ${what}`);
}

/** Integer text for a long, JSON-safe (no '+', no leading zeros), or null. */
function longText(v: unknown): string | null {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return null;
    if (Number.isSafeInteger(v)) return String(v === 0 ? 0 : v);
    v = BigInt(v); // exact: an integer-valued double converts without loss
  }
  if (typeof v === 'string') {
    if (!isLong(v, 0, v.length)) return null;
    v = BigInt(v);
  }
  if (typeof v === 'bigint') {
    const s = v.toString();
    return isLong(s, 0, s.length) ? s : null;
  }
  return null;
}

/** JSON number text for a float, or null. -0 keeps its sign. */
function floatText(v: unknown): string | null {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return null;
    return Object.is(v, -0) ? '-0' : String(v);
  }
  if (typeof v === 'bigint') {
    const s = v.toString();
    return isFloat(s, 0, s.length) ? s : null;
  }
  if (typeof v === 'string' && isFloat(v, 0, v.length)) return floatText(Number(v));
  return null;
}

/** RFC 3339 text for a date: a Date, epoch milliseconds or RFC 3339 text. */
function dateText(v: unknown): string | null {
  if (typeof v === 'string') return isDate(v, 0, v.length) ? v : null;
  const d = v instanceof Date ? v : typeof v === 'number' ? new Date(v) : null;
  if (d === null || Number.isNaN(d.getTime())) return null;
  const s = d.toISOString();
  return isDate(s, 0, s.length) ? s : null; // years past 9999 are not RFC 3339
}

function jsonText(v: unknown): string | null {
  try {
    return JSON.stringify(v) ?? null;
  } catch {
    return null; // bigint, cycles
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function arrayJson(f: CompiledField, v: unknown): string {
  if (!Array.isArray(v)) return misfit(f.path, v, 'an array');
  const parts: string[] = [];
  for (let i = 0; i < v.length; i++) {
    const e: unknown = v[i];
    const t = f.elem === K_LONG ? longText(e) : f.elem === K_FLOAT ? floatText(e) : typeof e === 'string' ? JSON.stringify(e) : null;
    if (t === null) misfit(`${f.path}[${i}]`, e, `a ${KIND_NAME[f.elem]}`);
    parts.push(t);
  }
  return `[${parts.join(',')}]`;
}

function mapJson(f: CompiledField, v: unknown): string {
  if (!isRecord(v)) return misfit(f.path, v, 'an object');
  const cs = f.nested as CompiledSchema;
  const stamp = nextStamp(cs);
  const parts: string[] = [];
  for (const key of Object.keys(v)) {
    const value = v[key];
    if (value === null || value === undefined) continue;
    const nf = cs.byKey.get(key);
    if (nf === undefined) throw new ApiError('E18110', `field "${f.path}.${key}": not in the schema`);
    cs.stamps[nf.index] = stamp;
    parts.push(`${JSON.stringify(key)}:${nestedJson(nf, value)}`);
  }
  for (const r of cs.required) {
    if (cs.stamps[r.index] !== stamp) throw new ApiError('E18110', `field "${r.path}": required field is missing`);
  }
  return `{${parts.join(',')}}`;
}

/** A value inside a map, as JSON. */
function nestedJson(f: CompiledField, v: unknown): string {
  let t: string | null;
  switch (f.kind) {
    case K_LONG:
      t = longText(v);
      break;
    case K_FLOAT:
      t = floatText(v);
      break;
    case K_STRING:
      t = typeof v === 'string' ? JSON.stringify(v) : null;
      break;
    case K_DATE: {
      const d = dateText(v);
      t = d === null ? null : JSON.stringify(d);
      break;
    }
    case K_BOOLEAN:
      t = typeof v === 'boolean' ? String(v) : null;
      break;
    case K_JSONSTRING:
      t = jsonText(v);
      break;
    case K_ARRAY:
      return arrayJson(f, v);
    default:
      return mapJson(f, v);
  }
  return t ?? misfit(f.path, v, `a ${KIND_NAME[f.kind]}`);
}

/** A top-level value in wire form, escaped for the field's repo (its escape mode). */
export function wireValue(f: CompiledField, v: unknown): string {
  let t: string | null;
  switch (f.kind) {
    case K_LONG:
      t = longText(v);
      break;
    case K_FLOAT:
      t = floatText(v);
      break;
    case K_STRING:
      t = typeof v === 'string' ? escapeText(v, f.escapes) : null;
      break;
    case K_JSONSTRING: {
      const s = typeof v === 'string' ? v : jsonText(v);
      t = s === null ? null : escapeJson(s, f.escapes);
      break;
    }
    case K_DATE:
      t = dateText(v);
      break;
    case K_BOOLEAN:
      t = typeof v === 'boolean' ? String(v) : null;
      break;
    case K_ARRAY:
      return arrayJson(f, v);
    case K_MAP:
      return mapJson(f, v);
    default:
      t = null;
  }
  return t ?? misfit(f.path, v, `a ${KIND_NAME[f.kind]}`);
}

/**
 * Encodes a point as a wire line that parsePoints accepts: strings escaped
 * for the schema's escape mode (escapes.ts escapeText), jsonstring values as
 * JSON text (escapeJson), arrays and maps as JSON, Date objects (or epoch
 * ms) as RFC 3339 with milliseconds, bigint longs exactly. null/undefined
 * values are skipped. A point with no values encodes to '' (callers skip it).
 *
 * @throws ApiError E18111 for a key not in the schema; E18110 when a value
 *   does not fit its field's type or a required field is missing
 */
export function encodePoint(point: Point, schema: CompiledSchema): string {
  const stamp = nextStamp(schema);
  let out = '';
  for (const key of Object.keys(point)) {
    const v = point[key];
    if (v === null || v === undefined) continue;
    const f = schema.byKey.get(key);
    if (f === undefined) throw new ApiError('E18111', `field ${quote(key)}: not in the repo schema`);
    schema.stamps[f.index] = stamp;
    const text = wireValue(f, v);
    out = out === '' ? f.keyEq + text : `${out}\t${f.keyEq}${text}`;
  }
  for (const r of schema.required) {
    if (schema.stamps[r.index] !== stamp) throw new ApiError('E18110', `field "${r.path}": required field is missing`);
  }
  return out + lineEnd(out.charCodeAt(out.length - 1), schema.escapes);
}

/**
 * A growing byte buffer of wire lines joined by '\n': what a log append
 * takes as its payload. Writing bytes as they are made keeps a large result
 * from piling up strings (a rope of 800k lines cost more in GC than the
 * encoding itself).
 */
export class LineSink {
  /** Bytes written are buf[0, len); writers that fill `buf` directly call ensure() first. */
  buf = Buffer.allocUnsafe(1 << 16);
  len = 0;
  /** Lines written. */
  count = 0;

  /** Makes room for `extra` more bytes; `buf` may be replaced. */
  ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + extra));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Appends `count` lines given as one text (lines joined by '\n'). */
  writeLines(text: string, count: number): void {
    this.ensure(text.length * 3 + 1);
    if (this.count > 0) this.buf[this.len++] = 10;
    this.len += this.buf.write(text, this.len, 'utf8');
    this.count += count;
  }

  /** The bytes written so far (a view, valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/**
 * Encodes `n` rows given as columns (`cols[c][i]` is row i's value of field
 * `keys[c]`; null/undefined = no value) as wire lines into `sink`, with the
 * checks of encodePoint. Rows without any value are skipped.
 *
 * @throws ApiError as encodePoint
 */
export function encodeColumns(keys: readonly string[], cols: readonly (readonly unknown[])[], n: number, schema: CompiledSchema, sink: LineSink): void {
  const fields: Array<CompiledField | undefined> = keys.map((k) => schema.byKey.get(k));
  if (n > 0) {
    for (const r of schema.required) {
      if (!fields.includes(r)) throw new ApiError('E18110', `field "${r.path}": required field is missing`);
    }
  }
  // One string per chunk, written once: Buffer.write per value cost more than the encoding.
  let text = '';
  let lines = 0;
  for (let i = 0; i < n; i++) {
    let line = '';
    for (let c = 0; c < cols.length; c++) {
      const v = cols[c]![i];
      const f = fields[c];
      if (v === null || v === undefined) {
        if (f?.required === true) throw new ApiError('E18110', `field "${f.path}": required field is missing`);
        continue;
      }
      if (f === undefined) throw new ApiError('E18111', `field ${quote(keys[c] ?? '')}: not in the repo schema`);
      line = line === '' ? f.keyEq + wireValue(f, v) : `${line}\t${f.keyEq}${wireValue(f, v)}`;
    }
    if (line === '') continue;
    line += lineEnd(line.charCodeAt(line.length - 1), schema.escapes);
    text = lines === 0 ? line : `${text}\n${line}`;
    lines++;
  }
  if (lines > 0) sink.writeLines(text, lines);
}
