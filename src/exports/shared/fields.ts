import { ApiError } from '../../errors.ts';
import type { SchemaField } from '../../ingest/types.ts';

/**
 * `#field` references in export specs. The SDK always writes `"#name"`;
 * documentation examples sometimes write the bare name, which counts as a
 * reference when it names a source field (official-extensions 1.6).
 * Nested map fields are addressed with dots: `#req.host`.
 */
export function fieldRef(value: unknown, schema: readonly SchemaField[], opts: { bareNames?: boolean } = {}): string[] | undefined {
  if (typeof value !== 'string') return undefined;
  if (value.startsWith('#')) return value.slice(1).split('.');
  if (opts.bareNames && findField(schema, value.split('.'))) return value.split('.');
  return undefined;
}

/** The schema entry at a dotted path, or undefined. */
export function findField(schema: readonly SchemaField[], path: readonly string[]): SchemaField | undefined {
  let fields: readonly SchemaField[] | undefined = schema;
  let found: SchemaField | undefined;
  for (const key of path) {
    found = fields?.find((f) => f.key === key);
    if (!found) return undefined;
    fields = found.schema;
  }
  return found;
}

/**
 * Checks that a `#field` reference names a field of the repo; E18303 naming
 * the spec key, the reference and the fields that exist.
 */
export function mustField(schema: readonly SchemaField[], specKey: string, value: unknown, opts: { bareNames?: boolean } = {}): { path: string[]; field: SchemaField } {
  const path = fieldRef(value, schema, opts);
  if (!path) throw new ApiError('E18303', `${specKey} must be a "#field" reference, got ${JSON.stringify(value)?.slice(0, 80)}`);
  const field = findField(schema, path);
  if (!field) {
    throw new ApiError('E18303', `${specKey} refers to "#${path.join('.')}", which is not a field of the repo (fields: ${schema.map((f) => f.key).join(', ')})`);
  }
  return { path, field };
}

/** The value at a dotted path of a decoded point (undefined when absent). */
export function valueAt(point: Record<string, unknown>, path: readonly string[]): unknown {
  let v: unknown = point;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}
