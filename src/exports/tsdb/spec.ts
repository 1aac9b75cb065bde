/**
 * The tsdb export spec (official-extensions 1.8): `destRepoName` (database),
 * `series` (measurement), `tags` and `fields` maps {name: "#field"},
 * optional `timestamp` ("#field" of type long, string or date),
 * `omitInvalid`, `omitEmpty`; our extension `timestampUnit` fixes the unit
 * of a long timestamp. Compiled once into a plan the encoder runs per record.
 */
import type { Config } from '../../config.ts';
import { ApiError } from '../../errors.ts';
import type { SchemaField, ValType } from '../../ingest/types.ts';
import { mustField } from '../shared/fields.ts';
import { escapeKey, escapeMeasurement, lineSafe, type LongUnit } from './line.ts';

/** How a source value becomes a field value. */
export type FieldKind = 'int' | 'float' | 'bool' | 'string';

export interface TagPlan {
  /** Escaped `key=`, ready to append. */
  readonly prefix: string;
  readonly path: readonly string[];
  readonly name: string;
  /** Type of the source field. */
  readonly source: ValType;
}

export interface FieldPlan extends TagPlan {
  readonly kind: FieldKind;
}

export interface TsdbPlan {
  readonly database: string;
  /** Escaped measurement. */
  readonly measurement: string;
  /** Sorted by key: influxd indexes series faster when tags arrive in key order. */
  readonly tags: readonly TagPlan[];
  readonly fields: readonly FieldPlan[];
  readonly timestamp: { readonly path: readonly string[]; readonly name: string; readonly source: 'long' | 'text' } | undefined;
  readonly longUnit: LongUnit;
  readonly omitEmpty: boolean;
}

const FIELD_KIND: Partial<Record<ValType, FieldKind>> = {
  long: 'int',
  float: 'float',
  boolean: 'bool',
  string: 'string',
  jsonstring: 'string',
  date: 'string',
};
const UNITS: readonly LongUnit[] = ['auto', 's', 'ms', 'us', 'ns'];
const refOpts = { bareNames: true };

function bad(msg: string): never {
  throw new ApiError('E18303', msg);
}

/** The message E18303 carries when no InfluxDB is configured. */
export const NO_TSDB_URL = 'tsdb exports need an InfluxDB 1.x server: set PIPELINE_TSDB_URL (e.g. http://127.0.0.1:8086; PIPELINE_TSDB_USER and PIPELINE_TSDB_PASSWORD when it requires auth) and restart the server';

function name(spec: Record<string, unknown>, key: string, what: 'measurement' | 'key' | 'database'): string {
  const v = spec[key];
  if (typeof v !== 'string' || v === '') bad(`${key} is required and must be a non-empty string`);
  if (v.length > 255) bad(`${key} is longer than 255 characters`);
  if (/[\u0000-\u001f]/.test(v)) bad(`${key} contains a control character`);
  if (what === 'database' && (/[/\\]/.test(v) || v === '.' || v === '..')) bad(`${key} ${JSON.stringify(v)}: InfluxDB database names cannot contain / or \\ or be . or ..`);
  if (what !== 'database') {
    const why = lineSafe(v, what);
    if (why) bad(`${key} ${JSON.stringify(v)} ${why}`);
  }
  return v;
}

function mapping(spec: Record<string, unknown>, key: 'tags' | 'fields', schema: readonly SchemaField[]): Array<{ name: string; path: string[]; field: SchemaField }> {
  const m = spec[key];
  if (m === undefined || m === null) return [];
  if (typeof m !== 'object' || Array.isArray(m)) bad(`${key} must be an object {name: "#field"}`);
  const out = [];
  for (const [n, ref] of Object.entries(m as Record<string, unknown>)) {
    const where = `${key}.${n}`;
    if (n === '') bad(`${key} has an empty name`);
    if (n === 'time') bad(`${where}: "time" is InfluxDB's timestamp column and cannot be a tag or field name`);
    if (/[\u0000-\u001f]/.test(n)) bad(`${where}: the name contains a control character`);
    const why = lineSafe(n, 'key');
    if (why) bad(`${where}: the name ${why}`);
    const { path, field } = mustField(schema, where, ref, refOpts);
    if (field.valtype === 'array') bad(`${where} refers to "#${path.join('.')}", an array: InfluxDB has no array values`);
    if (field.valtype === 'map') bad(`${where} refers to "#${path.join('.')}", a map: refer to one of its fields, e.g. "#${path.join('.')}.${field.schema?.[0]?.key ?? 'key'}"`);
    out.push({ name: n, path, field });
  }
  return out;
}

/**
 * Checks a tsdb spec against the repo schema and the server's config, and
 * compiles it. @throws ApiError E18303 naming the spec key and why.
 */
export function compileTsdbSpec(spec: Record<string, unknown>, schema: readonly SchemaField[], config: Config): TsdbPlan {
  if (!config.tsdb.url) bad(NO_TSDB_URL);
  const database = name(spec, 'destRepoName', 'database');
  const measurement = name(spec, 'series', 'measurement');
  if (measurement.startsWith('#')) bad('series must not start with "#": influxd reads such a line as a comment');
  const tags = mapping(spec, 'tags', schema);
  const fields = mapping(spec, 'fields', schema);
  if (fields.length === 0) bad('fields must map at least one field: InfluxDB stores no point without a field value');
  for (const f of fields) {
    if (tags.some((t) => t.name === f.name)) bad(`"${f.name}" is both a tag and a field name`);
  }
  let timestamp: TsdbPlan['timestamp'];
  if (spec.timestamp !== undefined && spec.timestamp !== null && spec.timestamp !== '') {
    const { path, field } = mustField(schema, 'timestamp', spec.timestamp, refOpts);
    const v = field.valtype;
    if (v !== 'long' && v !== 'string' && v !== 'date') {
      bad(`timestamp refers to "#${path.join('.')}" of type ${v}: it must be a long, string (RFC 3339) or date field`);
    }
    timestamp = { path, name: path.join('.'), source: v === 'long' ? 'long' : 'text' };
  }
  const unit = spec.timestampUnit ?? 'auto';
  if (!UNITS.includes(unit as LongUnit)) bad(`timestampUnit must be one of ${UNITS.join(', ')}`);
  for (const k of ['omitInvalid', 'omitEmpty'] as const) {
    if (spec[k] !== undefined && typeof spec[k] !== 'boolean') bad(`${k} must be a boolean`);
  }
  const byKey = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return {
    database,
    measurement: escapeMeasurement(measurement),
    tags: tags.sort(byKey).map((t) => ({ prefix: `,${escapeKey(t.name)}=`, path: t.path, name: t.name, source: t.field.valtype })),
    fields: fields.map((f) => ({ prefix: `${escapeKey(f.name)}=`, path: f.path, name: f.name, source: f.field.valtype, kind: FIELD_KIND[f.field.valtype] ?? 'string' })),
    timestamp,
    longUnit: unit as LongUnit,
    omitEmpty: spec.omitEmpty === true,
  };
}
