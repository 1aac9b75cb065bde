/**
 * INSERT documents straight from stored lines, for the common export (no
 * `doc` template: the record as it is): one scan per line builds the
 * document without the decoded point in between. It gives exactly what
 * operation() gives for decodeLine's point (same keys in the same order,
 * same BSON types); a line it does not cover (a field that is not a
 * scalar, a key no longer in the schema, a repeated key, a date MongoDB
 * cannot hold) answers undefined and takes that path, which also rejects
 * what must be rejected. test/exports-mongo-fast.test.ts proves the
 * equality on generated lines.
 */
import { Double, type AnyBulkWriteOperation, type Document } from 'mongodb';
import { K_BOOLEAN, K_DATE, K_FLOAT, K_LONG, K_STRING, type CompiledSchema } from '../../ingest/compiled.ts';
import { unescapeText } from '../../ingest/escapes.ts';
import { isFloat, isLong } from '../../ingest/scalars.ts';
import { setField, type OpContext } from './convert.ts';
import type { MongoPlan } from './spec.ts';

/** The operation for one stored line, or undefined to take the general path. */
export type FastOp = (line: string, offset: number, ctx: OpContext) => { op: AnyBulkWriteOperation; derived: boolean } | undefined;

/** The fast builder for a plan, or undefined when the plan needs the general path (templates, updates). */
export function fastInsert(plan: MongoPlan, schema: CompiledSchema): FastOp | undefined {
  if (plan.mode !== 'INSERT' || plan.doc !== undefined) return undefined;
  const fields = schema.fields;
  const mode = schema.escapes;
  return (line, offset, ctx) => {
    // _id first (where the server puts it), as operation() does.
    const doc: Document = { _id: undefined };
    const len = line.length;
    let pos = 0;
    let guess = 0;
    while (pos < len) {
      let tab = line.indexOf('\t', pos);
      if (tab < 0) tab = len;
      let f = fields[guess];
      let at: number;
      if (f !== undefined && line.startsWith(f.keyEq, pos)) {
        at = pos + f.keyEq.length;
      } else {
        const eq = line.indexOf('=', pos);
        if (!(eq > pos && eq < tab)) {
          pos = tab + 1;
          continue; // decodeLine skips such segments too
        }
        f = schema.byKey.get(line.slice(pos, eq));
        if (f === undefined) return undefined; // kept as text by decodeLine: the general path
        at = eq + 1;
      }
      if (Object.hasOwn(doc, f.key) && doc[f.key] !== undefined) return undefined;
      let v: unknown;
      switch (f.kind) {
        case K_STRING:
          v = unescapeText(line.slice(at, tab), mode);
          break;
        case K_LONG:
          v = isLong(line, at, tab) ? BigInt(line.slice(at, tab)) : unescapeText(line.slice(at, tab), mode);
          break;
        case K_FLOAT:
          if (isFloat(line, at, tab)) {
            const x = Number(line.slice(at, tab));
            v = Number.isInteger(x) ? new Double(x) : x;
          } else {
            v = unescapeText(line.slice(at, tab), mode);
          }
          break;
        case K_DATE: {
          const ms = Date.parse(line.slice(at, tab));
          if (Number.isNaN(ms)) return undefined; // rejected by the general path
          v = new Date(ms);
          break;
        }
        case K_BOOLEAN: {
          const n = tab - at;
          v = n === 4 && line.startsWith('true', at) ? true : n === 5 && line.startsWith('false', at) ? false : unescapeText(line.slice(at, tab), mode);
          break;
        }
        default:
          return undefined;
      }
      setField(doc, f.key, v);
      guess = f.index + 1;
      pos = tab + 1;
    }
    if (doc._id !== undefined) return { op: { insertOne: { document: doc } }, derived: false };
    doc._id = ctx.derivedId(offset);
    return { op: { insertOne: { document: doc } }, derived: true };
  };
}
