/**
 * What crosses the plugin boundary, shared by the JavaScript and the Java
 * runtime: points go in as JSON text, come back as JSON text, and are then
 * parsed here by trusted code and cut down to the transform's declared
 * `output` fields. Doing the enforcement on this side (not inside the
 * sandbox) means a plugin can never hand the server an object with getters,
 * prototypes or fields nobody declared.
 */
import { setProp } from '../ingest/json-lex.ts';
import type { Point } from '../ingest/types.ts';
import { PluginRunError } from './errors.ts';

/** One declared plugin output field (`plugin.output[]` of a transform). */
export interface OutputField {
  name: string;
  type: 'string' | 'long' | 'float';
}

/** Prefix that marks a bigint inside JSON text sent to a plugin (U+0000 never starts a real value). */
export const BIGINT_MARK = '\u0000n:';

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Serialises input points for a plugin. Longs beyond 2^53 arrive as bigint;
 * plain JSON.stringify throws on them, so only then do we pay for a replacer
 * that writes them as marked strings (`big` tells the reader to revive them).
 */
export function pointsToJson(points: readonly Point[]): { json: string; big: boolean } {
  try {
    return { json: JSON.stringify(points), big: false };
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    const json = JSON.stringify(points, (_k, v: unknown) => (typeof v === 'bigint' ? BIGINT_MARK + v.toString() : v));
    return { json, big: true };
  }
}

/** BIGINT_MARK as JSON.stringify writes it inside a string. */
const MARK_IN_JSON = '"\\u0000n:';
const MARKED_DIGITS = /^-?\d+$/;

function reviveLong(_key: string, v: unknown): unknown {
  if (typeof v !== 'string' || !v.startsWith(BIGINT_MARK)) return v;
  const digits = v.slice(BIGINT_MARK.length);
  return MARKED_DIGITS.test(digits) ? BigInt(digits) : v;
}

/**
 * Parses a plugin's JSON output and enforces the declared output fields.
 * @param label names the plugin in error messages, e.g. `plugin "com.x.Parser"`.
 * @throws PluginRunError when the text is not a JSON array or a value does not fit its field.
 */
export function decodeOutput(json: string, output: readonly OutputField[], label: string): Point[] {
  let rows: unknown;
  try {
    // Longs beyond 2^53 come back marked like the input's (js-sandbox), anywhere in a point.
    rows = json.includes(MARK_IN_JSON) ? JSON.parse(json, reviveLong) : JSON.parse(json);
  } catch (err) {
    throw new PluginRunError(`${label} produced output that is not JSON`, { cause: err });
  }
  return enforceOutput(rows, output, label);
}

/**
 * Keeps only declared fields of each output point and coerces their values:
 * long takes integer numbers or integer strings (bigint beyond 2^53), float
 * takes numbers or decimal strings, string takes any primitive (String(v)) or
 * object (JSON). null/undefined values are omitted, null/undefined points
 * are skipped.
 * @throws PluginRunError naming the field and the offending value.
 */
export function enforceOutput(rows: unknown, output: readonly OutputField[], label: string): Point[] {
  if (!Array.isArray(rows)) throw new PluginRunError(`${label} returned ${kindOf(rows)}, expected an array of points`);
  // Hoisted per call: this loop runs once per output value, the hot path of every plugin run.
  const names = output.map((f) => f.name);
  const types = output.map((f) => f.type ?? 'string');
  // Only names that exist on Object.prototype need the own-property check (JSON objects inherit from it).
  const inherited = names.map((n) => n in Object.prototype);
  const nf = names.length;
  const points: Point[] = [];
  for (let i = 0; i < rows.length; i++) {
    const row: unknown = rows[i];
    if (row === null || row === undefined) continue;
    if (typeof row !== 'object' || Array.isArray(row)) {
      throw new PluginRunError(`${label} returned ${kindOf(row)} as output point #${i}, expected an object`);
    }
    const src = row as Record<string, unknown>;
    const point: Point = {};
    for (let f = 0; f < nf; f++) {
      const name = names[f] as string;
      if (inherited[f] && !Object.hasOwn(src, name)) continue;
      const value = src[name];
      if (value === null || value === undefined) continue;
      const type = types[f] as OutputField['type'];
      // Fast paths for values that already have their declared type.
      let coerced: unknown;
      if (type === 'string' && typeof value === 'string') coerced = value;
      else if (type !== 'string' && typeof value === 'number' && (type === 'float' ? Number.isFinite(value) : Number.isInteger(value))) coerced = value;
      else coerced = coerce(value, type);
      if (coerced === undefined) {
        throw new PluginRunError(`${label}: output field "${name}" is declared ${type} but output point #${i} has ${preview(value)}`);
      }
      // "__proto__" is a legal field name; plain assignment would set the prototype instead.
      setProp(point, name, coerced);
    }
    points.push(point);
  }
  return points;
}

/** Coerces one value to a declared type; undefined means "does not fit". */
export function coerce(value: unknown, type: OutputField['type']): unknown {
  switch (type) {
    case 'long':
      if (typeof value === 'number') return Number.isInteger(value) ? value : undefined;
      if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value;
      if (typeof value === 'string') {
        const s = value.trim();
        if (!INTEGER.test(s)) return undefined;
        const n = Number(s);
        return Number.isSafeInteger(n) ? n : BigInt(s);
      }
      return undefined;
    case 'float':
      if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
      if (typeof value === 'bigint') return Number(value);
      if (typeof value === 'string') {
        const s = value.trim();
        return DECIMAL.test(s) ? Number(s) : undefined;
      }
      return undefined;
    default:
      // 'string', and the reference's default when a transform left `type` out.
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
      if (typeof value === 'object') return jsonWithLongs(value);
      return undefined;
  }
}

/**
 * JSON text of a plugin's object value. Longs beyond 2^53 arrive as bigints:
 * JSON.stringify throws on them, and writing them as strings would change their
 * type inside the text, so they are written as JSON numbers like every other
 * long. Values JSON has no place for are left out, as JSON.stringify does.
 */
function jsonWithLongs(value: unknown): string | undefined {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => jsonWithLongs(v) ?? 'null').join(',')}]`;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const text = jsonWithLongs(v);
    if (text !== undefined) parts.push(`${JSON.stringify(k)}:${text}`);
  }
  return `{${parts.join(',')}}`;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function preview(v: unknown): string {
  let text: string;
  try {
    text = typeof v === 'string' ? JSON.stringify(v) : typeof v === 'bigint' ? `${v}n` : (JSON.stringify(v) ?? String(v));
  } catch {
    text = String(v);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
