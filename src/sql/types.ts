/**
 * The type mapping between repo schemas and DuckDB (see
 * docs/decisions/003-sql-engine-and-type-mapping.md).
 *
 * Input: each repo field becomes a column of a fixed DuckDB type.
 * Output: each result column is planned as a repo field plus the DuckDB type
 * it is read as; when that differs from what the query produces the engine
 * wraps the query in a CAST, so odd types (INTERVAL, UUID, MAP, HUGEINT...)
 * are converted by DuckDB itself rather than re-implemented here.
 */
import { DuckDBTypeId, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import { DuckDBListValue, DuckDBStructValue, DuckDBTimestampNanosecondsValue, DuckDBTimestampTZValue, DuckDBTimestampValue } from '@duckdb/node-api';
import { ApiError } from '../errors.ts';
import type { ElemType, SchemaField, ValType } from '../ingest/types.ts';
import { formatMicros, formatNanos } from './time.ts';

/** Deepest map nesting a repo schema allows. */
export const MAX_MAP_DEPTH = 5;

const FIELD_KEY = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;

/** Double-quotes an identifier for DuckDB. */
export function quoteIdent(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"';
}

/** Single-quotes a string literal for DuckDB (no backslash escapes in standard literals). */
export function quoteLiteral(text: string): string {
  return "'" + text.replaceAll("'", "''") + "'";
}

const ELEM_SQL: Record<ElemType, string> = { long: 'BIGINT', float: 'DOUBLE', string: 'VARCHAR' };

/** DuckDB column type for a repo field. A map without nested fields has no STRUCT form and is loaded as JSON text. */
export function inputTypeSql(field: SchemaField): string {
  switch (field.valtype) {
    case 'long': return 'BIGINT';
    case 'float': return 'DOUBLE';
    case 'string':
    case 'jsonstring': return 'VARCHAR';
    case 'date': return 'TIMESTAMP';
    case 'boolean': return 'BOOLEAN';
    case 'array': return ELEM_SQL[field.elemtype ?? 'string'] + '[]';
    case 'map':
      if (!field.schema || field.schema.length === 0) return 'VARCHAR';
      return 'STRUCT(' + field.schema.map((f) => `${quoteIdent(f.key)} ${inputTypeSql(f)}`).join(', ') + ')';
  }
}

/** `CREATE TEMP TABLE` for a repo schema; TEMP makes the table private to the connection. */
export function createTableSql(table: string, schema: readonly SchemaField[]): string {
  const cols = schema.map((f) => `${quoteIdent(f.key)} ${inputTypeSql(f)}`).join(', ');
  return `CREATE TEMP TABLE ${quoteIdent(table)} (${cols})`;
}

/**
 * Turns a result column name into a repo field key: runs of invalid
 * characters become '_', '_' is trimmed at the ends, a leading digit gets a
 * '_' prefix (`count_star()` -> `count_star`, `avg(latency)` -> `avg_latency`).
 * Returns '' when nothing usable is left.
 */
export function sanitizeKey(name: string): string {
  if (FIELD_KEY.test(name)) return name;
  let key = name.replace(/[^a-zA-Z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  if (/^[0-9]/.test(key)) key = '_' + key;
  return key.slice(0, 128).replace(/_+$/, '');
}

/** How one result column (or nested value) is turned into repo data. */
export interface TypePlan {
  valtype: ValType;
  elemtype?: ElemType;
  schema?: SchemaField[];
  /** DuckDB type the value is read as. */
  target: string;
  /** Whether the query's own type differs from `target` (so a CAST is needed). */
  cast: boolean;
  /** Converts a non-NULL DuckDB value; undefined means "omit". */
  read: (v: DuckDBValue) => unknown;
}

/** A bigint as a number when exact, else unchanged. */
export function toLong(v: bigint): number | bigint {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}

const readLong = (v: DuckDBValue): unknown => (typeof v === 'bigint' ? toLong(v) : v);
const readSame = (v: DuckDBValue): unknown => v;
const readString = (v: DuckDBValue): unknown => (typeof v === 'string' ? v : String(v));
const readMicros = (v: DuckDBValue): unknown =>
  v instanceof DuckDBTimestampValue || v instanceof DuckDBTimestampTZValue ? formatMicros(v.micros) : undefined;
const readNanos = (v: DuckDBValue): unknown =>
  v instanceof DuckDBTimestampNanosecondsValue ? formatNanos(v.nanos) : undefined;

const SMALL_INTS: Partial<Record<DuckDBTypeId, string>> = {
  [DuckDBTypeId.TINYINT]: 'TINYINT', [DuckDBTypeId.SMALLINT]: 'SMALLINT', [DuckDBTypeId.INTEGER]: 'INTEGER',
  [DuckDBTypeId.UTINYINT]: 'UTINYINT', [DuckDBTypeId.USMALLINT]: 'USMALLINT', [DuckDBTypeId.UINTEGER]: 'UINTEGER',
};
const WIDE_INTS = new Set([DuckDBTypeId.BIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UHUGEINT, DuckDBTypeId.UBIGINT]);
const DATES = new Set([DuckDBTypeId.DATE, DuckDBTypeId.TIMESTAMP_S, DuckDBTypeId.TIMESTAMP_MS]);

const scalar = (valtype: ValType, target: string, cast: boolean, read: TypePlan['read']): TypePlan =>
  ({ valtype, target, cast, read });
const asString = (): TypePlan => scalar('string', 'VARCHAR', true, readString);

/** Plans a scalar type, or returns null when `t` is not one of the directly mapped scalars. */
function planScalar(t: DuckDBType): TypePlan | null {
  const id = t.typeId;
  const small = SMALL_INTS[id];
  if (small !== undefined) return scalar('long', small, false, readSame);
  if (WIDE_INTS.has(id)) return scalar('long', 'BIGINT', id !== DuckDBTypeId.BIGINT, readLong);
  switch (id) {
    case DuckDBTypeId.BOOLEAN: return scalar('boolean', 'BOOLEAN', false, readSame);
    case DuckDBTypeId.FLOAT: return scalar('float', 'FLOAT', false, readSame);
    case DuckDBTypeId.DOUBLE: return scalar('float', 'DOUBLE', false, readSame);
    case DuckDBTypeId.DECIMAL: return scalar('float', 'DOUBLE', true, readSame);
    case DuckDBTypeId.VARCHAR: return scalar('string', 'VARCHAR', false, readString);
    case DuckDBTypeId.TIMESTAMP: return scalar('date', 'TIMESTAMP', false, readMicros);
    case DuckDBTypeId.TIMESTAMP_TZ: return scalar('date', 'TIMESTAMPTZ', false, readMicros);
    case DuckDBTypeId.TIMESTAMP_NS: return scalar('date', 'TIMESTAMP_NS', false, readNanos);
  }
  if (DATES.has(id)) return scalar('date', 'TIMESTAMP', true, readMicros);
  return null;
}

/** Plans a LIST/ARRAY: lists of long/float/string scalars stay arrays, other scalars become string elements. */
function planList(t: DuckDBType & { valueType: DuckDBType }): TypePlan {
  const elem = planScalar(t.valueType);
  const nested = [DuckDBTypeId.LIST, DuckDBTypeId.ARRAY, DuckDBTypeId.STRUCT, DuckDBTypeId.MAP, DuckDBTypeId.UNION];
  if (elem === null && nested.includes(t.valueType.typeId)) return asString();
  let elemtype: ElemType = 'string';
  if (elem?.valtype === 'long') elemtype = 'long';
  else if (elem?.valtype === 'float') elemtype = 'float';
  const target = ELEM_SQL[elemtype] + '[]';
  const exact = t.typeId === DuckDBTypeId.LIST && ELEM_SQL[elemtype] === t.valueType.toString();
  const readElem = elemtype === 'long' ? readLong : elemtype === 'string' ? readString : readSame;
  const read = (v: DuckDBValue): unknown => {
    if (!(v instanceof DuckDBListValue)) return undefined;
    // Repo arrays have no NULL element: drop them rather than emit invalid data.
    const out: unknown[] = [];
    for (const item of v.items) if (item !== null) out.push(readElem(item));
    return out;
  };
  return { valtype: 'array', elemtype, target, cast: !exact, read };
}

/** Plans a STRUCT as a map with a nested schema; deeper than MAX_MAP_DEPTH it becomes a string. */
function planStruct(t: DuckDBType & { entryNames: readonly string[]; entryTypes: readonly DuckDBType[] }, depth: number): TypePlan {
  if (depth > MAX_MAP_DEPTH || t.entryNames.length === 0) return asString();
  const names = t.entryNames;
  const plans = t.entryTypes.map((et) => planType(et, depth + 1));
  const keys = uniqueKeys(names);
  const schema = plans.map((p, i) => toField(keys[i] ?? '', p));
  const target = 'STRUCT(' + plans.map((p, i) => `${quoteIdent(names[i] ?? '')} ${p.target}`).join(', ') + ')';
  const read = (v: DuckDBValue): unknown => {
    if (!(v instanceof DuckDBStructValue)) return undefined;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < plans.length; i++) {
      const item = v.entries[names[i] ?? ''];
      if (item === null || item === undefined) continue;
      const converted = (plans[i] as TypePlan).read(item);
      if (converted !== undefined) out[keys[i] ?? ''] = converted;
    }
    return out;
  };
  return { valtype: 'map', schema, target, cast: plans.some((p) => p.cast), read };
}

/** Plans any DuckDB type; `depth` is the map nesting level the value would sit at (top-level columns: 1). */
export function planType(t: DuckDBType, depth = 1): TypePlan {
  const s = planScalar(t);
  if (s !== null) return s;
  if (t.typeId === DuckDBTypeId.LIST || t.typeId === DuckDBTypeId.ARRAY) return planList(t);
  if (t.typeId === DuckDBTypeId.STRUCT) return planStruct(t, depth);
  return asString();
}

/** A planned type as a repo field (derived fields are never required). */
export function toField(key: string, p: TypePlan): SchemaField {
  const f: SchemaField = { key, valtype: p.valtype, required: false };
  if (p.elemtype !== undefined) f.elemtype = p.elemtype;
  if (p.schema !== undefined) f.schema = p.schema;
  return f;
}

/** Sanitised, unique keys for column names; a clash or an empty key is an E18209 asking for an alias. */
export function uniqueKeys(names: readonly string[]): string[] {
  const seen = new Map<string, string>();
  return names.map((name) => {
    const key = sanitizeKey(name);
    if (key === '') throw new ApiError('E18209', `result column "${name}" has no usable name; give it an alias`);
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw new ApiError('E18209', `result columns "${prev}" and "${name}" both map to field "${key}"; give them distinct aliases`);
    }
    seen.set(key, name);
    return key;
  });
}
