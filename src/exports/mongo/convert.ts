/**
 * Records -> bulkWrite operations. Values keep their repo type in BSON:
 * long -> int64 (exact beyond 2^53), float -> double (also 3.0), date ->
 * BSON date (millisecond precision, as MongoDB stores dates), boolean,
 * string and jsonstring -> as they are, array -> array, map -> embedded
 * document.
 */
import { setProp } from '../../ingest/json-lex.ts';
import { Double, type AnyBulkWriteOperation, type Document } from 'mongodb';
import type { Point, SchemaField } from '../../ingest/types.ts';
import { valueAt } from '../shared/fields.ts';
import type { MongoPlan, Template } from './spec.ts';

/** Why a record cannot become an operation; caught per record (a rejected record). */
export class Unfit extends Error {}

/** A decoded value of `field` as the BSON value to store; undefined when absent. */
export function bsonValue(field: SchemaField | undefined, v: unknown): unknown {
  if (v === undefined || v === null) return undefined;
  switch (field?.valtype) {
    case 'long':
      return typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v;
    case 'float':
      // A non-integer number is a BSON double anyway; 3.0 would become an int32 without the wrapper.
      return typeof v === 'number' && Number.isInteger(v) ? new Double(v) : v;
    case 'date': {
      if (typeof v !== 'string') return v;
      const ms = Date.parse(v);
      if (Number.isNaN(ms)) throw new Unfit(`field "${field.key}": ${JSON.stringify(v)} is not a date MongoDB can store`);
      return new Date(ms);
    }
    case 'array':
      return Array.isArray(v) ? v.map((x) => (field.elemtype === 'long' && typeof x === 'number' ? BigInt(x) : field.elemtype === 'float' && typeof x === 'number' ? new Double(x) : x)) : v;
    case 'map': {
      if (typeof v !== 'object' || Array.isArray(v)) return v;
      return recordDoc(field.schema ?? [], v as Point);
    }
    default:
      return v;
  }
}

/**
 * Sets `doc[k]` as an own property: `__proto__` is a valid repo field name,
 * and a plain assignment would set the prototype instead (the field was
 * silently dropped, and an updateKey of that name left the filter empty).
 */
export const setField = (doc: Document, k: string, v: unknown): void => setProp(doc, k, v);

const byKey = new WeakMap<readonly SchemaField[], Map<string, SchemaField>>();

/** A whole record as a document, field by field (added to `out`). */
export function recordDoc(schema: readonly SchemaField[], point: Point, out: Document = {}): Document {
  let fields = byKey.get(schema);
  if (!fields) byKey.set(schema, (fields = new Map(schema.map((f) => [f.key, f]))));
  for (const k in point) {
    const b = bsonValue(fields.get(k), point[k]);
    if (b !== undefined) setField(out, k, b);
  }
  return out;
}

/** The template with the record's values; keys whose field has no value are left out. */
function fill(t: Template, point: Point): unknown {
  switch (t.t) {
    case 'field':
      return bsonValue(t.field, t.path.length === 1 ? point[t.path[0] as string] : valueAt(point, t.path));
    case 'literal':
      return t.value;
    case 'array':
      return t.items.map((x) => fill(x, point) ?? null);
    case 'object': {
      const out: Document = {};
      for (const [k, v] of t.entries) {
        const x = fill(v, point);
        if (x !== undefined) setField(out, k, x);
      }
      return out;
    }
  }
}

export interface OpContext {
  /** `_id` for INSERT when neither the template nor the record sets one. */
  derivedId(offset: number): string;
}

/**
 * The operation for one record. For INSERT, `derived` tells whether its
 * `_id` came from derivedId (a duplicate key then means "already written").
 * @throws Unfit
 */
export function operation(plan: MongoPlan, schema: readonly SchemaField[], point: Point, offset: number, ctx: OpContext): { op: AnyBulkWriteOperation; derived: boolean } {
  if (plan.mode === 'INSERT') {
    // _id first (where the server puts it), built in place rather than copied.
    const doc: Document = { _id: undefined };
    if (plan.doc) Object.assign(doc, fill(plan.doc, point));
    else recordDoc(schema, point, doc);
    if (doc._id !== undefined) return { op: { insertOne: { document: doc } }, derived: false };
    doc._id = ctx.derivedId(offset);
    return { op: { insertOne: { document: doc } }, derived: true };
  }
  const body = (plan.doc ? fill(plan.doc, point) : recordDoc(schema, point)) as Document;
  const filter: Document = {};
  for (const k of plan.updateKey) {
    const v = bsonValue(k.field, k.path.length === 1 ? point[k.path[0] as string] : valueAt(point, k.path));
    if (v === undefined) throw new Unfit(`updateKey field "${k.name}" has no value: the record cannot be matched to a document`);
    setField(filter, k.name, v);
  }
  let update: Document;
  if (plan.operators) {
    update = {};
    for (const [op, args] of Object.entries(body)) if (Object.keys(args as Document).length > 0) update[op] = args;
  } else {
    // A plain template (or none) sets its fields: a replacement would wipe the document's other fields.
    update = Object.keys(body).length > 0 ? { $set: body } : {};
  }
  if (Object.keys(update).length === 0) throw new Unfit('none of the fields of doc has a value: nothing to update');
  return { op: { updateOne: { filter, update, upsert: plan.mode === 'UPSERT' } }, derived: false };
}
