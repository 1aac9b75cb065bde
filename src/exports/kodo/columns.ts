/**
 * Output columns of a kodo export: the spec's `fields` map (output column
 * -> "#field", dotted for nested map fields) resolved against the repo
 * schema, or every top-level field under its own name. Each column carries
 * the schema entry it is typed by (renamed to the column) and how to get
 * its value from the decoded top-level columns.
 */
import type { SchemaField } from '../../ingest/types.ts';
import { mustField } from '../shared/fields.ts';

export interface OutColumn {
  name: string;
  /** Index of the top-level source field in the repo schema. */
  top: number;
  /** Path below the top-level field (empty for top-level references). */
  rest: readonly string[];
  /** The source field's schema entry with `key` = the column name. */
  field: SchemaField;
}

/**
 * Resolves the output columns; ApiError E18303 when a reference names no
 * field of the repo.
 */
export function outColumns(schema: readonly SchemaField[], fields: Record<string, string> | undefined): OutColumn[] {
  if (fields === undefined) {
    return schema.map((f, top) => ({ name: f.key, top, rest: [], field: { ...f, required: false } }));
  }
  return Object.entries(fields).map(([name, ref]) => {
    const { path, field } = mustField(schema, `fields.${name}`, ref, { bareNames: true });
    return { name, top: schema.findIndex((f) => f.key === path[0]), rest: path.slice(1), field: { ...field, key: name, required: false } };
  });
}

/**
 * The output columns' values for rows [0, n) from decoded top-level
 * columns (`top[i][row]`): top-level references share the source array,
 * nested ones walk into the map values.
 */
export function columnValues(cols: readonly OutColumn[], top: readonly unknown[][], n: number): unknown[][] {
  return cols.map((c) => {
    const src = top[c.top] as unknown[];
    if (c.rest.length === 0) return src;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      let v: unknown = src[i];
      for (const k of c.rest) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
      out[i] = v;
    }
    return out;
  });
}
