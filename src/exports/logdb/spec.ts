import { ApiError } from '../../errors.ts';
import type { SchemaField } from '../../ingest/types.ts';
import type { LogField, LogType } from '../../logstore/schema.ts';
import { REPO_NAME_RE } from '../../logstore/schema.ts';
import { logDbFor, type LogDb } from '../../logstore/store.ts';
import type { LogRepo } from '../../logstore/repo.ts';
import { fieldRef, findField } from '../shared/fields.ts';

/** A doc mapping: each LogDB key takes a source field (path) or a nested mapping. */
export interface Mapping {
  key: string;
  /** Source path for a leaf. */
  path?: string[];
  /** The source field of the leaf. */
  field?: SchemaField;
  children?: Mapping[];
}

/** Retention of log repos created by an export. */
export const CREATED_RETENTION = '30d';

/** The log store of this server, or E18303. */
export function store(dataDir: string): LogDb {
  const s = logDbFor(dataDir);
  if (!s) throw new ApiError('E18303', 'the built-in log store is not running');
  return s;
}

/**
 * Parses `doc` against the source schema (official-extensions 1.9): absent
 * or null copies every field; values are `"#field"` references (bare names
 * of source fields count too) or nested objects.
 */
export function parseMapping(doc: unknown, schema: readonly SchemaField[], at = 'doc'): Mapping[] {
  if (doc === undefined || doc === null) return schema.map((f) => ({ key: f.key, path: [f.key], field: f }));
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ApiError('E18303', `${at} must be an object mapping log repo fields to "#field" references`);
  const out: Mapping[] = [];
  for (const [key, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/.test(key)) throw new ApiError('E18303', `${at}.${key}: invalid log repo field name`);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out.push({ key, children: parseMapping(v, schema, `${at}.${key}`) });
      continue;
    }
    const path = fieldRef(v, schema, { bareNames: true });
    const field = path ? findField(schema, path) : undefined;
    if (!path || !field) throw new ApiError('E18303', `${at}.${key}: ${JSON.stringify(v)} is not a "#field" reference to a field of the repo (fields: ${schema.map((f) => f.key).join(', ')})`);
    out.push({ key, path, field });
  }
  if (out.length === 0) throw new ApiError('E18303', `${at} maps no field`);
  return out;
}

/** LogDB type of a source field (1.9): arrays become their element type, map and jsonstring objects. */
function logType(f: SchemaField): LogType {
  switch (f.valtype) {
    case 'array': return f.elemtype ?? 'string';
    case 'map': case 'jsonstring': return 'object';
    default: return f.valtype;
  }
}

function entry(key: string, f: SchemaField): LogField {
  const type = logType(f);
  const e: LogField = { key, valtype: type, description: null };
  if (type === 'string') e.analyzer = 'standard';
  if (f.valtype === 'map' && f.schema) e.nested = f.schema.map((c) => entry(c.key, c));
  return e;
}

/** The log repo schema a mapping produces. */
export function deriveSchema(m: readonly Mapping[]): LogField[] {
  return m.map((x) => (x.children ? { key: x.key, valtype: 'object', nested: deriveSchema(x.children), description: null } : entry(x.key, x.field!)));
}

/** Source type -> log type pairs that convert (1.9; string -> long is rejected). */
const COMPATIBLE: Record<LogType, readonly LogType[]> = {
  string: ['string', 'date'], long: ['long', 'date', 'float'], float: ['float'], boolean: ['boolean'], date: ['date'], object: ['object'],
};

/**
 * Checks an existing log repo against the mapping: mapped fields it lacks are
 * added (returned as the merged schema), fields of another type must be a
 * conversion 1.9 allows; E18303 naming the field otherwise.
 */
export function mergeSchema(existing: readonly LogField[], wanted: readonly LogField[], at = ''): LogField[] | undefined {
  let changed = false;
  const out = existing.map((e) => ({ ...e }));
  for (const w of wanted) {
    const e = out.find((x) => x.key === w.key);
    if (!e) {
      out.push(w);
      changed = true;
      continue;
    }
    if (!COMPATIBLE[w.valtype].includes(e.valtype)) {
      throw new ApiError('E18303', `log repo field "${at}${w.key}" is ${e.valtype}; a ${w.valtype} source value cannot be stored there`);
    }
    if (e.valtype === 'object' && w.nested && e.nested) {
      const sub = mergeSchema(e.nested, w.nested, `${at}${w.key}.`);
      if (sub) {
        e.nested = sub;
        changed = true;
      }
    }
  }
  return changed ? out : undefined;
}

/** Makes sure the destination log repo exists and holds every mapped field. */
export async function ensureRepo(logdb: LogDb, account: string, dest: string, region: string, mapping: readonly Mapping[]): Promise<LogRepo> {
  const wanted = deriveSchema(mapping);
  const repo = logdb.find(account, dest);
  if (!repo) {
    await logdb.create(account, dest, { region, retention: CREATED_RETENTION, schema: wanted });
    return logdb.get(account, dest);
  }
  const merged = mergeSchema(repo.def.schema, wanted);
  if (merged) await logdb.update(account, dest, { schema: merged });
  return repo;
}

/**
 * Checks the mapping against the log repo without changing it (E18303 for a
 * field of an incompatible type): true when the repo exists and already
 * holds every mapped field.
 */
export function checkRepo(logdb: LogDb, account: string, dest: string, mapping: readonly Mapping[]): boolean {
  const repo = logdb.find(account, dest);
  if (!repo) return false;
  return mergeSchema(repo.def.schema, deriveSchema(mapping)) === undefined;
}

/** The destination name: the SDK lower-cases it before sending; we insist on the LogDB rule. */
export function destName(spec: Record<string, unknown>): string {
  const d = spec.destRepoName;
  if (typeof d !== 'string' || !REPO_NAME_RE.test(d)) throw new ApiError('E18303', `destRepoName ${JSON.stringify(d)} must be a log repo name (${REPO_NAME_RE.source})`);
  return d;
}
