/**
 * The mongo fast path (src/exports/mongo/fast.ts: INSERT documents straight
 * from stored lines) builds the same operations as the general path
 * (decodeLine + operation()), for generated lines in every escape mode:
 * same keys in the same order, same BSON types and values; lines it does
 * not cover go to the general path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Document } from 'mongodb';
import { operation, type OpContext } from '../src/exports/mongo/convert.ts';
import { fastInsert } from '../src/exports/mongo/fast.ts';
import { compileMongoSpec } from '../src/exports/mongo/spec.ts';
import { OutboundPolicy } from '../src/exports/shared/outbound.ts';
import type { EscapeMode } from '../src/ingest/escapes.ts';
import { compileSchema, decodeLine } from '../src/ingest/points.ts';
import type { SchemaField } from '../src/ingest/types.ts';
import { testConfig } from './sink-harness.ts';

const SCHEMA: SchemaField[] = [
  { key: 's', valtype: 'string', required: false },
  { key: 'n', valtype: 'long', required: false },
  { key: 'x', valtype: 'float', required: false },
  { key: 'b', valtype: 'boolean', required: false },
  { key: 't', valtype: 'date', required: false },
  { key: '_id', valtype: 'string', required: false },
  { key: 'a', valtype: 'array', elemtype: 'long', required: false },
];

const policy = new OutboundPolicy(testConfig().exportOutbound);
const ids: OpContext = { derivedId: (o) => `acct/repo/e/0:${o}` };

const junk = fc.string({ unit: fc.constantFrom('\\', 't', 'n', 'r', 'x', '\r', '=', '"', '中', '1', '.', 'e', '-', '+', ' ', 'Z', ':'), maxLength: 14 });
const anyText = fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replace(/[\t\n]/g, ' '));
const long = fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String), fc.constantFrom('+5', '-0', '007', '9223372036854775808'), junk);
const float = fc.oneof(fc.double().map(String), fc.constantFrom('1.', '.5', '3', '-0', '1e400', '2.0', 'NaN'), junk);
const date = fc.oneof(fc.date({ min: new Date(-1e13), max: new Date(1e13), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom('2017-01-02T03:04:05.123456789+08:00', '2017-01-02t03:04:05Z', '2017-02-31T00:00:00Z', 'not a date'), junk);
const VALUES: Record<string, fc.Arbitrary<string>> = {
  s: fc.oneof(junk, anyText), n: long, x: float, b: fc.oneof(fc.constantFrom('true', 'false', 'True'), junk), t: date, _id: anyText,
  a: fc.constantFrom('[1,2]', '[]'),
};

const line = fc.tuple(fc.shuffledSubarray(SCHEMA.map((f) => f.key)), fc.record(VALUES), fc.option(fc.constantFrom('zz=1', 's=dup', '=x', 'noeq')), fc.boolean())
  .map(([keys, vals, extra, gap]) => {
    const segs = keys.map((k) => `${k}=${vals[k]}`);
    if (extra !== null) segs.splice(1, 0, extra);
    if (gap) segs.splice(1, 0, '');
    return segs.join('\t');
  });

/** Keys in order with each value's type, recursively: deepStrictEqual ignores key order. */
function shape(d: unknown): unknown {
  if (d === null || typeof d !== 'object') return [typeof d, d];
  if (d instanceof Date) return ['Date', d.getTime()];
  if (Array.isArray(d)) return d.map(shape);
  return [d.constructor?.name, Object.entries(d as Document).map(([k, v]) => [k, shape(v)])];
}

function general(l: string, mode: EscapeMode, offset: number): unknown {
  const schema = compileSchema(SCHEMA, mode);
  const plan = compileMongoSpec({ host: '127.0.0.1:1', dbName: 'd', collName: 'c', mode: 'INSERT' }, SCHEMA, policy);
  try {
    return operation(plan, SCHEMA, decodeLine(l, schema), offset, ids);
  } catch (err) {
    return `Unfit: ${(err as Error).message}`;
  }
}

describe('mongo INSERT documents straight from stored lines', () => {
  for (const mode of ['reference', 'unescape', 'verbatim'] as const) {
    it(`builds the same operations as the general path for generated lines in the ${mode} escape mode`, () => {
      const schema = compileSchema(SCHEMA, mode);
      const plan = compileMongoSpec({ host: '127.0.0.1:1', dbName: 'd', collName: 'c', mode: 'INSERT' }, SCHEMA, policy);
      const fast = fastInsert(plan, schema);
      assert.ok(fast);
      let taken = 0;
      fc.assert(fc.property(line, fc.nat(), (l, offset) => {
        const got = fast(l, offset, ids);
        if (got === undefined) return; // the general path builds it (or rejects it)
        taken++;
        const want = general(l, mode, offset);
        assert.deepStrictEqual(got, want, l);
        assert.deepStrictEqual(shape(got), shape(want), l);
      }), { numRuns: 1500 });
      assert.ok(taken > 300, `the fast path took only ${taken} of 1500 lines`);
    });
  }

  it('takes the general path for templates, updates, arrays, unknown keys and dates MongoDB cannot hold', () => {
    const schema = compileSchema(SCHEMA);
    const p = (spec: Record<string, unknown>) => compileMongoSpec({ host: '127.0.0.1:1', dbName: 'd', collName: 'c', ...spec }, SCHEMA, policy);
    assert.equal(fastInsert(p({ mode: 'INSERT', doc: { v: '#s' } }), schema), undefined);
    assert.equal(fastInsert(p({ mode: 'UPSERT', updateKey: ['s'] }), schema), undefined);
    const fast = fastInsert(p({ mode: 'INSERT' }), schema)!;
    assert.equal(fast('s=a\ta=[1]', 0, ids), undefined);
    assert.equal(fast('s=a\tgone=1', 0, ids), undefined);
    assert.equal(fast('t=not a date', 0, ids), undefined);
    assert.match(String(general('t=not a date', 'reference', 0)), /^Unfit/);
    assert.deepStrictEqual(fast('s=a\\tb\tn=12\tx=3', 7, ids), general('s=a\\tb\tn=12\tx=3', 'reference', 7));
  });
});
