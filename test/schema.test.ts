import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError, type ErrorCode } from '../src/errors.ts';
import { checkSchemaUpdate, validateSchema } from '../src/ingest/schema.ts';
import type { SchemaField } from '../src/ingest/types.ts';
import { REFERENCE_SCHEMA } from './fixtures/schemas.ts';

/** Asserts that fn throws an ApiError with this code whose message contains every fragment. */
function throwsApi(fn: () => unknown, code: ErrorCode, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `${JSON.stringify(e.message)} should mention ${f}`);
    return true;
  });
}

const REFERENCE_EXAMPLE = REFERENCE_SCHEMA;

/** A chain of `levels` nested maps ending in one long field. */
function nestedMaps(levels: number): unknown[] {
  let inner: unknown[] = [{ key: 'leaf', valtype: 'long' }];
  for (let i = levels; i >= 1; i--) inner = [{ key: `m${i}`, valtype: 'map', schema: inner }];
  return inner;
}

describe('validateSchema', () => {
  it('accepts the reference example repo schema unchanged', () => {
    assert.deepEqual(validateSchema(REFERENCE_EXAMPLE), REFERENCE_EXAMPLE);
  });

  it('accepts every valtype, including boolean and jsonstring from the SDK schema-free mode', () => {
    const types = ['long', 'date', 'float', 'string', 'boolean', 'jsonstring'];
    const out = validateSchema(types.map((t) => ({ key: `f_${t}`, valtype: t })));
    assert.deepEqual(out.map((f) => f.valtype), types);
  });

  it('lower-cases valtype and elemtype, so "String" from the reference update example is stored as string', () => {
    const out = validateSchema([
      { key: 'ip', valtype: 'String', required: false },
      { key: 'xs', valtype: 'ARRAY', elemtype: 'Float' },
    ]);
    assert.equal(out[0]?.valtype, 'string');
    assert.equal(out[1]?.valtype, 'array');
    assert.equal(out[1]?.elemtype, 'float');
  });

  it('defaults required to false, keeps descriptions and drops unknown properties', () => {
    const out = validateSchema([{ key: 'a', valtype: 'long', description: 'the a', options: { x: 1 }, analyzer: 'std' }]);
    assert.deepEqual(out, [{ key: 'a', valtype: 'long', required: false, description: 'the a' }]);
  });

  it('accepts arrays of long, float and string elements', () => {
    for (const elemtype of ['long', 'float', 'string']) {
      assert.equal(validateSchema([{ key: 'a', valtype: 'array', elemtype }])[0]?.elemtype, elemtype);
    }
  });

  it('ignores elemtype and nested schema on valtypes that do not use them', () => {
    const out = validateSchema([{ key: 'a', valtype: 'long', elemtype: 'string', schema: [{ key: 'x', valtype: 'long' }] }]);
    assert.deepEqual(out, [{ key: 'a', valtype: 'long', required: false }]);
  });

  it('accepts maps nested five levels deep and rejects a sixth level with E18109', () => {
    assert.equal(validateSchema(nestedMaps(5)).length, 1);
    throwsApi(() => validateSchema(nestedMaps(6)), 'E18109', 'm1.m2.m3.m4.m5.m6');
  });

  it('rejects a missing, null or empty schema with E18105', () => {
    throwsApi(() => validateSchema(undefined), 'E18105');
    throwsApi(() => validateSchema(null), 'E18105');
    throwsApi(() => validateSchema([]), 'E18105');
  });

  it('rejects a schema that is not an array, or an entry that is not an object, with E18109', () => {
    throwsApi(() => validateSchema({ key: 'a', valtype: 'long' }), 'E18109');
    throwsApi(() => validateSchema(['a']), 'E18109', 'schema[0]');
    throwsApi(() => validateSchema([null]), 'E18109');
    throwsApi(() => validateSchema([[{ key: 'a', valtype: 'long' }]]), 'E18109');
  });

  it('rejects keys that break the name rule with E18106', () => {
    for (const key of ['1abc', 'a-b', '', 'a b', 'x'.repeat(129), 'é', 5, undefined]) {
      throwsApi(() => validateSchema([{ key, valtype: 'long' }]), 'E18106');
    }
    assert.equal(validateSchema([{ key: `_${'x'.repeat(127)}`, valtype: 'long' }]).length, 1);
  });

  it('names the nested key path of a bad nested key', () => {
    throwsApi(
      () => validateSchema([{ key: 'profile', valtype: 'map', schema: [{ key: 'bad-key', valtype: 'long' }] }]),
      'E18106',
      'profile[0]',
    );
  });

  it('rejects unsupported valtypes and elemtypes with E18107 naming the field', () => {
    throwsApi(() => validateSchema([{ key: 'a', valtype: 'int' }]), 'E18107', '"a"');
    throwsApi(() => validateSchema([{ key: 'a' }]), 'E18107', '"a"');
    throwsApi(() => validateSchema([{ key: 'a', valtype: 'array', elemtype: 'map' }]), 'E18107', '"a"');
    throwsApi(
      () => validateSchema([{ key: 'profile', valtype: 'map', schema: [{ key: 'salary', valtype: 'money' }] }]),
      'E18107',
      'profile.salary',
    );
  });

  it('rejects a duplicate key at the same level with E18104 but allows the same key at another level', () => {
    throwsApi(() => validateSchema([{ key: 'a', valtype: 'long' }, { key: 'a', valtype: 'string' }]), 'E18104', '"a"');
    throwsApi(
      () => validateSchema([{ key: 'p', valtype: 'map', schema: [{ key: 'x', valtype: 'long' }, { key: 'x', valtype: 'long' }] }]),
      'E18104',
      'p.x',
    );
    assert.equal(validateSchema([{ key: 'a', valtype: 'map', schema: [{ key: 'a', valtype: 'long' }] }]).length, 1);
  });

  it('rejects an array without elemtype and a map without nested schema with E18109', () => {
    throwsApi(() => validateSchema([{ key: 'xs', valtype: 'array' }]), 'E18109', '"xs"');
    throwsApi(() => validateSchema([{ key: 'm', valtype: 'map' }]), 'E18109', '"m"');
    throwsApi(() => validateSchema([{ key: 'm', valtype: 'map', schema: [] }]), 'E18109', '"m"');
  });

  it('accepts "true"/"false" strings for required and rejects other non-booleans with E18109', () => {
    assert.equal(validateSchema([{ key: 'a', valtype: 'long', required: 'true' }])[0]?.required, true);
    throwsApi(() => validateSchema([{ key: 'a', valtype: 'long', required: 1 }]), 'E18109', '"a"');
  });
});

describe('checkSchemaUpdate', () => {
  const old = validateSchema(REFERENCE_EXAMPLE);
  const clone = (): SchemaField[] => structuredClone(old);

  it('accepts an identical schema', () => {
    checkSchemaUpdate(old, clone());
  });

  it('accepts new optional fields at the top level and inside a map', () => {
    const next = clone();
    next.push({ key: 'ip', valtype: 'string', required: false });
    next[3]?.schema?.push({ key: 'level', valtype: 'long', required: false });
    checkSchemaUpdate(old, next);
  });

  it('accepts relaxing required from true to false', () => {
    const next = clone();
    (next[0] as SchemaField).required = false;
    (next[3]?.schema?.[0] as SchemaField).required = false;
    checkSchemaUpdate(old, next);
  });

  it('rejects removing a field with E18128 naming it', () => {
    throwsApi(() => checkSchemaUpdate(old, clone().slice(1)), 'E18128', 'userName');
    const next = clone();
    next[3]?.schema?.pop();
    throwsApi(() => checkSchemaUpdate(old, next), 'E18128', 'profile.education');
  });

  it('rejects changing a valtype or an elemtype with E18128 naming the field', () => {
    const a = clone();
    (a[1] as SchemaField).valtype = 'long';
    throwsApi(() => checkSchemaUpdate(old, a), 'E18128', 'age');
    const b = clone();
    (b[2] as SchemaField).elemtype = 'string';
    throwsApi(() => checkSchemaUpdate(old, b), 'E18128', 'addresses');
    const c = clone();
    (c[3]?.schema?.[1] as SchemaField).valtype = 'string';
    throwsApi(() => checkSchemaUpdate(old, c), 'E18128', 'profile.salary');
  });

  it('rejects making an optional field required with E18128', () => {
    const next = clone();
    (next[3]?.schema?.[2] as SchemaField).required = true;
    throwsApi(() => checkSchemaUpdate(old, next), 'E18128', 'profile.education');
  });

  it('rejects a new required field, at any level, with E18128', () => {
    const a = clone();
    a.push({ key: 'ip', valtype: 'string', required: true });
    throwsApi(() => checkSchemaUpdate(old, a), 'E18128', 'ip');
    const b = clone();
    b[3]?.schema?.push({ key: 'level', valtype: 'long', required: true });
    throwsApi(() => checkSchemaUpdate(old, b), 'E18128', 'profile.level');
  });

  it('accepts a new optional map whose own nested fields are required', () => {
    const next = clone();
    next.push({ key: 'geo', valtype: 'map', required: false, schema: [{ key: 'lat', valtype: 'float', required: true }] });
    checkSchemaUpdate(old, next);
  });
});
