import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ApiError } from '../src/errors.ts';
import { encodeColumns, LineSink } from '../src/ingest/encode.ts';
import { compileSchema, decodeColumns, decodeLine, decodeTags, encodePoint, parsePoints, type CompiledSchema } from '../src/ingest/points.ts';
import { validateSchema } from '../src/ingest/schema.ts';
import type { SchemaField } from '../src/ingest/types.ts';

// Fixed run counts (not time-based) keep the cost of this file stable: ~2 s.
const RUNS = 1000;

/** A schema with one optional field of each type, plus a nested map. */
const every = compileSchema(
  validateSchema([
    { key: 'l', valtype: 'long' },
    { key: 'f', valtype: 'float' },
    { key: 's', valtype: 'string' },
    { key: 'd', valtype: 'date' },
    { key: 'b', valtype: 'boolean' },
    { key: 'j', valtype: 'jsonstring' },
    { key: 'al', valtype: 'array', elemtype: 'long' },
    { key: 'af', valtype: 'array', elemtype: 'float' },
    { key: 'as', valtype: 'array', elemtype: 'string' },
    {
      key: 'm',
      valtype: 'map',
      schema: [
        { key: 'n', valtype: 'long', required: true },
        { key: 'js', valtype: 'jsonstring' },
        { key: 'mm', valtype: 'map', schema: [{ key: 'x', valtype: 'date' }] },
      ],
    },
  ]),
);

/**
 * Runs parsePoints and checks the contract for any input: it returns lines
 * or throws ApiError. Accepted lines must decode, and re-encoding a decoded
 * point must give a line that is accepted and decodes to the same point.
 */
function parseContract(text: string, cs: CompiledSchema = every, tags?: string): void {
  let lines: string[];
  try {
    lines = parsePoints(text, cs, tags === undefined ? {} : { tags });
  } catch (e) {
    if (e instanceof ApiError) return;
    throw e;
  }
  assert.ok(lines.length > 0);
  for (const line of lines) {
    assert.ok(!line.includes('\n'));
    const point = decodeLine(line, cs);
    const again = encodePoint(point, cs);
    assert.deepEqual(parsePoints(again, cs, { maxValueBytes: Infinity }), [again]);
    assert.deepEqual(decodeLine(again, cs), point);
  }
}

/** Characters that matter to the format, mixed with ordinary ones. */
const wireChar = fc.constantFrom(
  '\t', '\n', '\r', '=', '\\', 't', 'n', 'r', '"', '[', ']', '{', '}', ',', ':', ' ', '-', '+', '.', 'e',
  '0', '1', '9', 'T', 'Z', 'l', 'f', 's', 'd', 'b', 'j', 'm', 'a', 'é', '😀', '\u0000',
);
const fieldKey = fc.constantFrom('l', 'f', 's', 'd', 'b', 'j', 'al', 'af', 'as', 'm', 'x', '');
const oddValue = fc.oneof(
  fc.string({ unit: wireChar, maxLength: 30 }),
  fc.constantFrom(
    '9223372036854775807', '9223372036854775808', '-9223372036854775808', '1e400', 'NaN', 'true', 'false',
    '2017-01-02T03:04:05.123456789+08:00', '2017-02-29T00:00:00Z', '[1,2]', '[1.5]', '["a\\"b"]', '[', ']',
    '{"n":1}', '{"n":1,"js":{"a":[null]}}', '{"n":1,"mm":{"x":"2017-01-02T03:04:05Z"}}', '{"n":null}', '\\', '\\u',
  ),
  fc.json({ maxDepth: 3 }),
);
/** Fields that are mostly valid for `every`, so that deep paths get exercised. */
const plausibleField = fc.oneof(
  fc.oneof(fc.integer(), fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n })).map((v) => `l=${v}`),
  fc.double({ noNaN: true }).map((v) => `f=${v}`),
  fc.string({ unit: wireChar, maxLength: 10 }).map((v) => `s=${v}`),
  fc.date({ min: new Date(0), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true }).map((v) => `d=${v.toISOString()}`),
  fc.boolean().map((v) => `b=${v}`),
  fc.json({ maxDepth: 2 }).map((v) => `j=${v}`),
  fc.array(fc.oneof({ arbitrary: fc.integer(), weight: 20 }, fc.double(), fc.string({ maxLength: 3 }))).map((v) => `al=${JSON.stringify(v)}`),
  fc.array(fc.double({ noNaN: true, noDefaultInfinity: true })).map((v) => `af=${JSON.stringify(v)}`),
  fc.array(fc.string({ unit: wireChar, maxLength: 5 })).map((v) => `as=${JSON.stringify(v)}`),
  fc.record({ n: fc.integer(), js: fc.jsonValue({ maxDepth: 2 }), mm: fc.record({ x: fc.date({ min: new Date(0), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true }) }) }, { requiredKeys: ['n'] })
    .map((v) => `m=${JSON.stringify(v)}`),
);
const segment = fc.oneof(
  { arbitrary: plausibleField, weight: 12 },
  { arbitrary: fc.tuple(fieldKey, oddValue).map(([k, v]) => `${k}=${v}`), weight: 2 },
  { arbitrary: fc.string({ unit: wireChar, maxLength: 20 }), weight: 1 },
);
const lineText = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('\t'));
const bodyText = fc
  .tuple(fc.array(lineText, { minLength: 1, maxLength: 4 }), fc.constantFrom('\n', '\r\n'))
  .map(([lines, nl]) => lines.join(nl));

describe('parsePoints on hostile input', () => {
  it('returns lines or throws ApiError for arbitrary unicode strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (t) => parseContract(t)), { numRuns: RUNS });
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (t) => parseContract(t)), { numRuns: RUNS });
  });

  it('returns lines or throws ApiError for arbitrary bytes decoded as UTF-8, invalid sequences included', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => parseContract(Buffer.from(bytes).toString('utf8'))),
      { numRuns: RUNS },
    );
  });

  it('returns lines or throws ApiError for near-valid bodies built from the format\'s own characters', () => {
    fc.assert(fc.property(bodyText, (t) => parseContract(t)), { numRuns: RUNS * 5 });
  });

  it('keeps the same contract in the official escape modes (options.unescapeLine true and false)', () => {
    const official = [compileSchema(every.source, 'unescape'), compileSchema(every.source, 'verbatim')];
    fc.assert(fc.property(bodyText, fc.constantFrom(...official), (t, cs) => parseContract(t, cs)), { numRuns: RUNS * 5 });
  });

  it('returns lines or throws ApiError for arbitrary tags', () => {
    fc.assert(
      fc.property(lineText, lineText, (body, tags) => parseContract(body, every, tags)),
      { numRuns: RUNS },
    );
  });

  it('decodes arbitrary tag parameters or throws ApiError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.base64String({ maxLength: 40 })), (p) => {
        try {
          decodeTags(p);
        } catch (e) {
          assert.ok(e instanceof ApiError, String(e));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('never throws from decodeLine, whatever a stored line holds', () => {
    fc.assert(fc.property(lineText, (l) => void decodeLine(l, every)), { numRuns: RUNS });
  });

  it('handles huge lines, deep JSON and broken escapes without any other exception', () => {
    const huge = [
      `m=${'['.repeat(100000)}`,
      `al=${'['.repeat(100000)}`,
      `m={"n":1,"js":${'['.repeat(100000)}}`,
      `m={"n":1,"js":${'{"a":'.repeat(100000)}`,
      `j=${'['.repeat(100000)}`,
      `l=${'9'.repeat(1000000)}`,
      `f=${'9'.repeat(400)}`,
      `s=${'\\'.repeat(100001)}`,
      `s=${'\\'.repeat(50000)}`,
      `as=["${'\\'.repeat(99999)}`,
      `d=${'2017-01-02T03:04:05.'}${'1'.repeat(200000)}Z`,
      `${'k'.repeat(500000)}=1`,
      's=a\t'.repeat(100000),
      's=a\n'.repeat(100000),
      '\t'.repeat(100000),
      '='.repeat(100000),
    ];
    for (const t of huge) parseContract(t);
  });
});

// ---- round trip: encodePoint -> parsePoints -> decodeLine -------------------

const keyArb = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,11}$/).filter((k) => k !== '__proto__');
const LEAVES = ['long', 'float', 'string', 'date', 'boolean', 'jsonstring', 'array'] as const;

function levelArb(depth: number): fc.Arbitrary<SchemaField[]> {
  const leaf = fc
    .record({ key: keyArb, required: fc.boolean(), t: fc.constantFrom(...LEAVES), e: fc.constantFrom('long', 'float', 'string') })
    .map(({ key, required, t, e }): SchemaField =>
      t === 'array' ? { key, required, valtype: 'array', elemtype: e as 'long' } : { key, required, valtype: t });
  const map = fc
    .record({ key: keyArb, required: fc.boolean(), schema: fc.constant(null).chain(() => levelArb(depth + 1)) })
    .map(({ key, required, schema }): SchemaField => ({ key, required, valtype: 'map', schema }));
  const field = depth < 5 ? fc.oneof({ arbitrary: leaf, weight: 6 }, { arbitrary: map, weight: 1 }) : leaf;
  return fc.uniqueArray(field, { selector: (f) => f.key, minLength: 1, maxLength: depth === 0 ? 8 : 3 });
}

const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('\t', '\n', '\r', '\\', 't', 'n', 'r', '"', '=', 'a', 'é'), maxLength: 20 }),
);
const long = fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
const float = fc.double({ noNaN: true, noDefaultInfinity: true });
const pad = (n: number, w: number) => String(n).padStart(w, '0');
const dateText = fc
  .record({
    y: fc.integer({ min: 0, max: 9999 }), mo: fc.integer({ min: 1, max: 12 }), d: fc.integer({ min: 1, max: 28 }),
    h: fc.integer({ min: 0, max: 23 }), mi: fc.integer({ min: 0, max: 59 }), s: fc.integer({ min: 0, max: 59 }),
    frac: fc.stringMatching(/^(\.[0-9]{1,9})?$/),
    off: fc.oneof(fc.constant('Z'), fc.tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([sg, h, m]) => `${sg}${pad(h, 2)}:${pad(m, 2)}`)),
  })
  .map((p) => `${pad(p.y, 4)}-${pad(p.mo, 2)}-${pad(p.d, 2)}T${pad(p.h, 2)}:${pad(p.mi, 2)}:${pad(p.s, 2)}${p.frac}${p.off}`);
const date = fc.oneof(dateText, fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }));

/** A value for field f, and the value decodeLine must give back. */
function valueArb(f: SchemaField, nested: boolean): fc.Arbitrary<[unknown, unknown]> {
  const same = (a: fc.Arbitrary<unknown>) => a.map((v): [unknown, unknown] => [v, v]);
  const longOut = (v: unknown) => (typeof v === 'bigint' && v >= -(2n ** 53n - 1n) && v <= 2n ** 53n - 1n ? Number(v) : v);
  switch (f.valtype) {
    case 'long':
      return long.map((v) => [v, longOut(v)]);
    case 'float':
      return same(float);
    case 'string':
      return same(text);
    case 'date':
      return date.map((v) => [v, v instanceof Date ? v.toISOString() : v]);
    case 'boolean':
      return same(fc.boolean());
    case 'jsonstring':
      // null is "absent" inside a map, so it is not a value a required field can carry
      // At the top level: JSON text (its strings may hold any escape), or text without JSON strings.
      return nested
        ? fc.jsonValue({ maxDepth: 3 }).filter((v) => v !== null).map((v) => [v, JSON.parse(JSON.stringify(v))])
        : same(fc.oneof(fc.json({ maxDepth: 3 }), text.filter((s) => !s.includes('"'))));
    case 'array': {
      const elem: fc.Arbitrary<readonly [unknown, unknown]> =
        f.elemtype === 'long' ? long.map((v) => [v, longOut(v)] as const)
          : f.elemtype === 'float' ? float.map((v) => [v, v] as const)
            : text.map((v) => [v, v] as const);
      return fc.array(elem, { maxLength: 5 }).map((xs) => [xs.map((x) => x[0]), xs.map((x) => x[1])]);
    }
    default:
      return pointArb(f.schema ?? [], true);
  }
}

/** A point for a schema level: [what to encode, what decodeLine returns]. */
function pointArb(fields: SchemaField[], nested: boolean): fc.Arbitrary<[Record<string, unknown>, Record<string, unknown>]> {
  const parts = fields.map((f) => {
    const v = valueArb(f, nested);
    // Optional fields may be missing or null; both come back absent.
    const opt = f.required ? v : fc.oneof(v, fc.constant<[unknown, unknown]>([null, undefined]), fc.constant<[unknown, unknown]>([undefined, undefined]));
    return opt.map(([input, out]) => ({ key: f.key, input, out }));
  });
  return fc.tuple(...parts).map((entries) => {
    const input: Record<string, unknown> = {};
    const out: Record<string, unknown> = {};
    for (const e of entries) {
      if (e.input !== undefined) input[e.key] = e.input;
      if (e.out !== undefined && e.out !== null) out[e.key] = e.out;
    }
    return [input, out];
  });
}

const schemaAndPoints = levelArb(0).chain((raw) => {
  const fields = validateSchema(raw);
  return fc.tuple(fc.constant(fields), fc.array(pointArb(fields, false), { minLength: 1, maxLength: 4 }));
});

describe('encodePoint / parsePoints / decodeLine round trip', () => {
  it('gives back the same values for random points of random schemas', () => {
    fc.assert(
      fc.property(schemaAndPoints, ([fields, points]) => {
        const cs = compileSchema(fields);
        const lines = points.map(([input]) => encodePoint(input, cs));
        const kept = points.filter((_, i) => lines[i] !== '');
        if (kept.length === 0) return; // every field optional and absent: nothing to store
        const stored = parsePoints(lines.filter((l) => l !== '').join('\n'), cs, { maxValueBytes: Infinity });
        assert.equal(stored.length, kept.length);
        stored.forEach((line, i) => assert.deepEqual(decodeLine(line, cs), kept[i]?.[1]));
      }),
      { numRuns: RUNS },
    );
  });
});

// ---- decodeColumns (loading into DuckDB) agrees with decodeLine ---------------

describe('decodeColumns', () => {
  it('gives each field the value decodeLine gives it, and undefined where the line lacks it', () => {
    fc.assert(
      fc.property(schemaAndPoints, fc.nat(3), ([fields, points], skip) => {
        const cs = compileSchema(fields);
        const lines = points.map(([input]) => encodePoint(input, cs)).filter((l) => l !== '');
        // A stale value must not survive into a row that lacks the field.
        const cols = cs.fields.map(() => new Array<unknown>(lines.length).fill('stale'));
        const start = Math.min(skip, lines.length);
        decodeColumns(lines, start, lines.length - start, cs, cols);
        for (let r = start; r < lines.length; r++) {
          const point = decodeLine(lines[r]!, cs);
          cs.fields.forEach((f) => assert.deepEqual(cols[f.index]![r - start], point[f.key], `row ${r} field ${f.key}`));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('skips keys that left the schema', () => {
    const cs = compileSchema(validateSchema([{ key: 'a', valtype: 'long' }, { key: 'b', valtype: 'string' }]));
    const cols: unknown[][] = [[], []];
    decodeColumns(['old=x\tb=y\ta=1', 'b=z'], 0, 2, cs, cols);
    assert.deepEqual(cols, [[1, undefined], ['y', 'z']]);
  });
});

// ---- encodeColumns (query results) agrees with encodePoint -------------------

describe('encodeColumns', () => {
  /** Encodes points as columns (the shape a query result has) into one payload. */
  const viaColumns = (fields: SchemaField[], inputs: Array<Record<string, unknown>>, cs: CompiledSchema, keys = fields.map((f) => f.key)): string => {
    const cols = keys.map((k) => inputs.map((p) => p[k]));
    const sink = new LineSink();
    // Two calls, as chunk after chunk: the sink joins them with one '\n'.
    const half = Math.floor(inputs.length / 2);
    encodeColumns(keys, cols.map((c) => c.slice(0, half)), half, cs, sink);
    encodeColumns(keys, cols.map((c) => c.slice(half)), inputs.length - half, cs, sink);
    return sink.bytes().toString('utf8');
  };

  it('writes exactly the lines encodePoint writes, rows without values skipped', () => {
    fc.assert(
      fc.property(schemaAndPoints, ([fields, points]) => {
        const cs = compileSchema(fields);
        const inputs = points.map(([input]) => input);
        const expected = inputs.map((p) => encodePoint(p, cs)).filter((l) => l !== '').join('\n');
        assert.equal(viaColumns(fields, inputs, cs), expected);
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses what encodePoint refuses: missing required fields, unknown keys, misfits', () => {
    const cs = compileSchema(validateSchema([{ key: 'a', valtype: 'long', required: true }, { key: 'b', valtype: 'string' }]));
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as { code?: string }).code;
      }
      return 'no error';
    };
    const fields = validateSchema([{ key: 'a', valtype: 'long' }, { key: 'b', valtype: 'string' }]);
    assert.equal(code(() => viaColumns(fields, [{ a: 1 }, { b: 'x' }], cs)), 'E18110'); // a is NULL in row 2
    assert.equal(code(() => viaColumns(fields, [{ b: 'x' }], cs, ['b'])), 'E18110'); // a is not a column at all
    assert.equal(code(() => viaColumns(fields, [{ a: 1, z: 2 }], cs, ['a', 'z'])), 'E18111');
    assert.equal(code(() => viaColumns(fields, [{ a: 'x' }], cs)), 'E18110');
    // An unknown column that is NULL everywhere writes nothing, as encodePoint skips null values.
    assert.equal(viaColumns(fields, [{ a: 1 }], cs, ['a', 'z']), 'a=1');
  });
});
