/**
 * Repo schema validation (create / update repo). Client schemas arrive as
 * loose JSON from several SDKs; this module normalises them into
 * SchemaField[] and enforces the reference's rules and the "schema may only
 * grow" rule of updates.
 */
import { ApiError } from '../errors.ts';
import type { ElemType, SchemaField, ValType } from './types.ts';

/** Field names: the reference's name rule (also used for repo names). */
export const FIELD_KEY_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;
/** Maps may nest at most this many levels below the top-level fields. */
export const MAX_MAP_DEPTH = 5;

const VALTYPES: ReadonlySet<string> = new Set<ValType>([
  'long', 'date', 'float', 'string', 'array', 'map', 'boolean', 'jsonstring',
]);
const ELEMTYPES: ReadonlySet<string> = new Set<ElemType>(['long', 'float', 'string']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function keyPath(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

/** Shows a client-supplied value in a message without echoing huge input. */
function show(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

/**
 * Normalises a client schema: valtype/elemtype lower-cased, `required`
 * defaulting to false, unknown properties dropped, nested map schemas
 * validated recursively.
 *
 * @param raw the `schema` property of a create/update repo request body
 * @returns the normalised fields, in the client's order
 * @throws ApiError E18105 empty or missing schema, E18106 bad key, E18107
 *   unsupported valtype/elemtype, E18104 duplicate key at one level, E18109
 *   malformed entry (non-object, array without elemtype, map without nested
 *   schema, maps nested deeper than {@link MAX_MAP_DEPTH}, non-boolean required)
 */
export function validateSchema(raw: unknown): SchemaField[] {
  if (raw === undefined || raw === null || (Array.isArray(raw) && raw.length === 0)) {
    throw new ApiError('E18105');
  }
  if (!Array.isArray(raw)) throw new ApiError('E18109', 'schema must be an array of fields');
  return validateLevel(raw, '', 0);
}

function validateLevel(entries: unknown[], prefix: string, depth: number): SchemaField[] {
  const seen = new Set<string>();
  const out: SchemaField[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const where = prefix === '' ? `schema[${i}]` : `${prefix}[${i}]`;
    if (!isPlainObject(e)) throw new ApiError('E18109', `${where} is not an object`);
    const key = e['key'];
    if (typeof key !== 'string' || !FIELD_KEY_RE.test(key)) {
      throw new ApiError('E18106', `${where}: ${show(key)} does not match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
    }
    const path = keyPath(prefix, key);
    if (seen.has(key)) throw new ApiError('E18104', `duplicate field "${path}"`);
    seen.add(key);
    out.push(validateField(e, key, path, depth));
  }
  return out;
}

function validateField(e: Record<string, unknown>, key: string, path: string, depth: number): SchemaField {
  const rawType = e['valtype'];
  const valtype = typeof rawType === 'string' ? rawType.toLowerCase() : undefined;
  if (valtype === undefined || !VALTYPES.has(valtype)) {
    throw new ApiError('E18107', `field "${path}": valtype ${show(rawType)}`);
  }
  const field: SchemaField = { key, valtype: valtype as ValType, required: parseRequired(e['required'], path) };
  if (valtype === 'array') {
    const rawElem = e['elemtype'];
    if (rawElem === undefined || rawElem === null || rawElem === '') {
      throw new ApiError('E18109', `field "${path}": array needs an elemtype (long, float or string)`);
    }
    const elem = typeof rawElem === 'string' ? rawElem.toLowerCase() : undefined;
    if (elem === undefined || !ELEMTYPES.has(elem)) {
      throw new ApiError('E18107', `field "${path}": elemtype ${show(rawElem)}`);
    }
    field.elemtype = elem as ElemType;
  } else if (valtype === 'map') {
    const nested = e['schema'];
    if (!Array.isArray(nested) || nested.length === 0) {
      throw new ApiError('E18109', `field "${path}": map needs a non-empty nested schema`);
    }
    if (depth + 1 > MAX_MAP_DEPTH) {
      throw new ApiError('E18109', `field "${path}": maps nest deeper than ${MAX_MAP_DEPTH} levels`);
    }
    field.schema = validateLevel(nested, path, depth + 1);
  }
  // Other valtypes ignore elemtype/schema, as the reference says for elemtype.
  const description = e['description'];
  if (typeof description === 'string') field.description = description;
  return field;
}

function parseRequired(v: unknown, path: string): boolean {
  if (v === undefined || v === null || v === false) return false;
  if (v === true) return true;
  // Loosely typed clients (PHP, hand-written JSON) send strings.
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new ApiError('E18109', `field "${path}": required must be a boolean`);
}

/**
 * Checks that `next` is an allowed update of `old`: fields may be added at
 * any level (optional only, because stored data lacks them) and `required`
 * may be relaxed; nothing may be removed, retyped or made required.
 *
 * @throws ApiError E18128 naming the offending field path
 */
export function checkSchemaUpdate(old: SchemaField[], next: SchemaField[]): void {
  checkLevel(old, next, '');
}

function checkLevel(old: SchemaField[], next: SchemaField[], prefix: string): void {
  const byKey = new Map<string, SchemaField>();
  for (const f of next) byKey.set(f.key, f);
  for (const o of old) {
    const path = keyPath(prefix, o.key);
    const n = byKey.get(o.key);
    if (n === undefined) throw new ApiError('E18128', `field "${path}" cannot be removed`);
    if (n.valtype !== o.valtype) {
      throw new ApiError('E18128', `field "${path}" cannot change valtype from ${o.valtype} to ${n.valtype}`);
    }
    if (o.valtype === 'array' && n.elemtype !== o.elemtype) {
      throw new ApiError('E18128', `field "${path}" cannot change elemtype from ${o.elemtype} to ${n.elemtype}`);
    }
    if (n.required && !o.required) throw new ApiError('E18128', `field "${path}" cannot become required`);
    if (o.valtype === 'map') checkLevel(o.schema ?? [], n.schema ?? [], path);
    byKey.delete(o.key);
  }
  // What is left is new at this level.
  for (const n of byKey.values()) {
    if (n.required) {
      throw new ApiError('E18128', `new field "${keyPath(prefix, n.key)}" cannot be required: stored data lacks it`);
    }
  }
}

/**
 * The first two keys at one level of `schema` (nested maps included) that differ
 * only in case, as dotted paths, or undefined. SQL names are case-insensitive:
 * such a repo cannot be a table (nor a map a struct) for a SQL transform.
 */
export function caseClash(schema: readonly SchemaField[], prefix = ''): [string, string] | undefined {
  const seen = new Map<string, string>();
  for (const f of schema) {
    const path = prefix === '' ? f.key : `${prefix}.${f.key}`;
    const other = seen.get(f.key.toLowerCase());
    if (other !== undefined) return [other, path];
    seen.set(f.key.toLowerCase(), path);
    const inner = f.schema ? caseClash(f.schema, path) : undefined;
    if (inner) return inner;
  }
  return undefined;
}
