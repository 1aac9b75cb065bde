import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError, type ErrorCode } from '../src/errors.ts';
import { compileSchema, decodeLine, decodeTags, encodePoint, parsePoints } from '../src/ingest/points.ts';
import { validateSchema } from '../src/ingest/schema.ts';
import { REFERENCE_SCHEMA } from './fixtures/schemas.ts';

function throwsApi(fn: () => unknown, code: ErrorCode, ...fragments: string[]): ApiError {
  let caught: ApiError | undefined;
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `${JSON.stringify(e.message)} should mention ${f}`);
    caught = e;
    return true;
  });
  return caught as ApiError;
}

const schemaOf = (raw: unknown[]) => compileSchema(validateSchema(raw));

/** The reference's example repo. */
const ref = schemaOf(REFERENCE_SCHEMA);
const REF_LINE = 'userName=小张\tage=22\taddresses=[1,2]\tprofile={"position":"engineer","salary":15000}';

/** One optional field of every type. */
const all = schemaOf([
  { key: 'l', valtype: 'long' },
  { key: 'f', valtype: 'float' },
  { key: 's', valtype: 'string' },
  { key: 'd', valtype: 'date' },
  { key: 'b', valtype: 'boolean' },
  { key: 'j', valtype: 'jsonstring' },
  { key: 'al', valtype: 'array', elemtype: 'long' },
  { key: 'af', valtype: 'array', elemtype: 'float' },
  { key: 'as', valtype: 'array', elemtype: 'string' },
  { key: 'm', valtype: 'map', schema: [{ key: 'n', valtype: 'long' }, { key: 'when', valtype: 'date' }, { key: 'js', valtype: 'jsonstring' }] },
]);
const ok = (line: string) => assert.deepEqual(parsePoints(line, all), [line]);
const one = (line: string) => decodeLine(parsePoints(line, all)[0] as string, all);

describe('parsePoints: line framing', () => {
  it('accepts the reference example point and returns the line as sent', () => {
    assert.deepEqual(parsePoints(REF_LINE, ref), [REF_LINE]);
  });

  it('splits points on newlines, with or without a trailing newline, and strips the CR of CRLF', () => {
    const body = 's=a\r\ns=b\ns=c';
    assert.deepEqual(parsePoints(body, all), ['s=a', 's=b', 's=c']);
    assert.deepEqual(parsePoints(`${body}\r\n`, all), ['s=a', 's=b', 's=c']);
  });

  it('skips empty lines but counts them in line numbers', () => {
    assert.deepEqual(parsePoints('\n\ns=a\n\n\ns=b\n\n', all), ['s=a', 's=b']);
    throwsApi(() => parsePoints('s=a\n\nl=x', all), 'E18110', 'line 3', '"l"');
  });

  it('rejects a body without points with E18006', () => {
    for (const body of ['', '\n', '\r\n\r\n', '\t\n']) throwsApi(() => parsePoints(body, all), 'E18006');
  });

  it('rejects a field without "=" with E18007 naming the line and the field', () => {
    throwsApi(() => parsePoints('s=a\ns=b\tnoequals', all), 'E18007', 'line 2', 'noequals');
    // a raw TAB inside a value splits it, leaving a segment without '='
    throwsApi(() => parsePoints('s=hello\tworld', all), 'E18007', 'line 1', 'world');
  });

  it('rejects an empty key with E18007', () => {
    throwsApi(() => parsePoints('s=a\t=5', all), 'E18007', 'line 1', 'empty key');
  });

  it('splits key and value at the first "=" so values may contain "="', () => {
    assert.equal(one('s=a=b==c').s, 'a=b==c');
  });

  it('rejects a key that is not in the schema with E18111', () => {
    throwsApi(() => parsePoints('s=a\tnope=1', all), 'E18111', 'line 1', '"nope"');
  });

  it('rejects a key given twice in one line with E18110', () => {
    throwsApi(() => parsePoints('s=a\nl=1\ts=b\tl=2', all), 'E18110', 'line 2', '"l"', 'duplicate');
  });

  it('rejects a line missing a required field with E18110 naming it', () => {
    throwsApi(() => parsePoints(`${REF_LINE}\nuserName=x\tage=1\taddresses=[]`, ref), 'E18110', 'line 2', '"profile"', 'required');
  });

  it('is atomic: an invalid line anywhere rejects the whole body', () => {
    throwsApi(() => parsePoints('s=a\ns=b\nl=1.5\ns=d', all), 'E18110', 'line 3');
  });

  it('accepts fields in any order and lines that set only some optional fields', () => {
    ok('b=true\tl=1\ts=x');
    ok('m={"n":1}');
  });
});

describe('parsePoints: value types', () => {
  it('checks longs exactly at the int64 edges', () => {
    ok('l=9223372036854775807');
    ok('l=-9223372036854775808');
    ok('l=0');
    ok('l=-0');
    ok('l=007');
    throwsApi(() => parsePoints('l=9223372036854775808', all), 'E18110', 'line 1', '"l"', 'int64');
    throwsApi(() => parsePoints('l=-9223372036854775809', all), 'E18110', '"l"');
    throwsApi(() => parsePoints(`l=1${'0'.repeat(30)}`, all), 'E18110', '"l"');
  });

  it('rejects non-integer longs', () => {
    for (const v of ['', '1.0', '1e3', 'abc', '-', '+', '0x10', ' 1', '1 ']) {
      throwsApi(() => parsePoints(`l=${v}`, all), 'E18110', 'line 1', '"l"');
    }
  });

  it('accepts floats in decimal and exponent notation, integers included', () => {
    for (const v of ['1', '-1', '1.5', '-0.25', '.5', '5.', '1e5', '1.5E-7', '1e+21', '+3']) ok(`f=${v}`);
  });

  it('rejects NaN, Infinity, overflowing and malformed floats with E18110 naming the value', () => {
    for (const v of ['NaN', 'Infinity', '-Infinity', '1e400', '', '.', '1e', '1.2.3', 'abc', '0x1p3']) {
      throwsApi(() => parsePoints(`s=a\nf=${v}`, all), 'E18110', 'line 2', 'field "f"');
    }
    throwsApi(() => parsePoints('f=abc', all), 'E18110', 'line 1, field "f": "abc" is not a float');
  });

  it('accepts RFC 3339 dates with nanoseconds and offsets', () => {
    for (const v of [
      '2017-01-02T03:04:05.123456789+08:00',
      '2017-01-02T03:04:05Z',
      '2017-01-02T03:04:05.1-05:30',
      '2016-02-29T23:59:59.999z',
      '2000-02-29T00:00:00+00:00',
    ]) ok(`d=${v}`);
    assert.equal(one('d=2017-01-02T03:04:05.123456789+08:00').d, '2017-01-02T03:04:05.123456789+08:00');
  });

  it('rejects malformed or impossible dates with E18104', () => {
    for (const v of [
      '2017-01-02', '2017-01-02T03:04:05', '2017-01-02 03:04:05Z', '2017-13-02T03:04:05Z', '2017-00-02T03:04:05Z',
      '2017-02-29T03:04:05Z', '1900-02-29T03:04:05Z', '2017-04-31T03:04:05Z', '2017-01-02T24:00:00Z',
      '2017-01-02T03:60:05Z', '2017-01-02T03:04:60Z', '2017-01-02T03:04:05.Z', '2017-01-02T03:04:05+0800',
      '2017-01-02T03:04:05+24:00', '2017-01-02T03:04:05Zjunk', '1486000000',
    ]) throwsApi(() => parsePoints(`d=${v}`, all), 'E18104', 'line 1', '"d"');
  });

  it('accepts booleans true and false only', () => {
    ok('b=true');
    ok('b=false');
    assert.equal(one('b=false').b, false);
    for (const v of ['TRUE', '1', 'yes', '']) throwsApi(() => parsePoints(`b=${v}`, all), 'E18110', '"b"');
  });

  it('accepts any text for jsonstring, JSON or not', () => {
    ok('j={"a":[1,2]}');
    ok('j=not json {');
    ok('j=');
  });

  it('accepts arrays of long, float and string elements', () => {
    ok('al=[1,-2,9223372036854775807]\taf=[1,2.5,-1e3]\tas=["a","b\\"c",""]');
    ok('al=[]\taf=[ ]\tas=[ "x" ]');
    assert.deepEqual(one('as=["a\\tb","\\u00e9"]').as, ['a\tb', 'é']);
  });

  it('rejects array elements of the wrong type naming the element', () => {
    throwsApi(() => parsePoints('al=[1,2.5]', all), 'E18110', 'line 1, field "al[1]": "2.5" is not a long');
    throwsApi(() => parsePoints('al=[1,"2"]', all), 'E18110', 'al[1]');
    throwsApi(() => parsePoints('al=[9223372036854775808]', all), 'E18110', 'al[0]', 'int64');
    throwsApi(() => parsePoints('af=[1,"x"]', all), 'E18110', 'af[1]');
    throwsApi(() => parsePoints('as=["a",1]', all), 'E18110', 'as[1]');
    throwsApi(() => parsePoints('as=[null]', all), 'E18110', 'as[0]');
  });

  it('rejects array values that are not JSON arrays with E18110', () => {
    for (const v of ['', '1', '[1,]', '[1', '[1]x', '{"a":1}', '[01]', "['a']", '[1 2]']) {
      throwsApi(() => parsePoints(`al=${v}`, all), 'E18110', 'line 1', '"al');
    }
  });

  it('accepts JSON whose whitespace was escaped the wire way', () => {
    ok('al=[1,\\n 2]\tm={\\n\\t"n": 1\\r\\n}');
    assert.deepEqual(one('al=[1,\\n2]').al, [1, 2]);
  });
});

describe('parsePoints: maps', () => {
  const deep = schemaOf([
    {
      key: 'a', valtype: 'map', schema: [{
        key: 'b', valtype: 'map', schema: [{
          key: 'c', valtype: 'map', schema: [{
            key: 'd', valtype: 'map', schema: [{
              key: 'e', valtype: 'map', schema: [{ key: 'leaf', valtype: 'long', required: true }],
            }],
          }],
        }],
      }],
    },
  ]);

  it('validates and decodes maps nested five levels deep', () => {
    const line = 'a={"b":{"c":{"d":{"e":{"leaf":9223372036854775807}}}}}';
    assert.deepEqual(parsePoints(line, deep), [line]);
    assert.deepEqual(decodeLine(line, deep), { a: { b: { c: { d: { e: { leaf: 9223372036854775807n } } } } } });
    throwsApi(() => parsePoints('a={"b":{"c":{"d":{"e":{}}}}}', deep), 'E18110', 'a.b.c.d.e.leaf', 'required');
  });

  it('rejects unknown nested keys, wrong nested types and missing nested required fields', () => {
    throwsApi(() => parsePoints('userName=x\tage=1\taddresses=[]\tprofile={"position":"a","salary":1,"boss":"b"}', ref), 'E18110', 'line 1', 'profile.boss');
    throwsApi(() => parsePoints('userName=x\tage=1\taddresses=[]\tprofile={"position":"a","salary":"lots"}', ref), 'E18110', 'profile.salary');
    throwsApi(() => parsePoints('userName=x\tage=1\taddresses=[]\tprofile={"position":"a"}', ref), 'E18110', 'profile.salary', 'required');
    throwsApi(() => parsePoints('userName=x\tage=1\taddresses=[]\tprofile={"position":"a","salary":1,"education":[1]}', ref), 'E18110', 'profile.education[0]');
    throwsApi(() => parsePoints('userName=x\tage=1\taddresses=[]\tprofile={"position":"a","position":"b","salary":1}', ref), 'E18110', 'profile.position', 'duplicate');
  });

  it('rejects a bad date inside a map with E18104', () => {
    throwsApi(() => parsePoints('m={"when":"yesterday"}', all), 'E18104', 'line 1', 'm.when');
    assert.deepEqual(one('m={"when":"2017-01-02T03:04:05Z"}').m, { when: '2017-01-02T03:04:05Z' });
  });

  it('treats null map members as absent', () => {
    assert.deepEqual(one('m={"n":null,"when":null}').m, {});
    throwsApi(() => parsePoints('userName=x\tage=1\taddresses=[]\tprofile={"position":"a","salary":null}', ref), 'E18110', 'profile.salary');
  });

  it('accepts any JSON value for a jsonstring inside a map, but not unbounded nesting', () => {
    assert.deepEqual(one('m={"js":{"x":[1,{"y":null}]}}').m, { js: { x: [1, { y: null }] } });
    throwsApi(() => parsePoints(`m={"js":${'['.repeat(100000)}}`, all), 'E18110', 'm.js');
  });

  it('rejects values that are not JSON objects', () => {
    for (const v of ['', '[]', 'null', '{', '{"n":1', '{n:1}', '{"n":1,}', "{'n':1}"]) {
      throwsApi(() => parsePoints(`m=${v}`, all), 'E18110', 'line 1', '"m');
    }
  });

  it('rejects the reference example body literally, since its salary key is not quoted JSON', () => {
    throwsApi(
      () => parsePoints('userName=小张\tage=22\taddresses=[1]\tprofile={"position":"engineer",salary:15000}', ref),
      'E18110',
      'profile',
    );
  });
});

describe('parsePoints: value size limit', () => {
  it('rejects a value longer than maxValueBytes with E18008, counting UTF-8 bytes', () => {
    ok(`s=${'x'.repeat(100 * 1024)}`);
    throwsApi(() => parsePoints(`s=${'x'.repeat(100 * 1024 + 1)}`, all), 'E18008', 'line 1', '"s"');
    assert.deepEqual(parsePoints('s=ééé', all, { maxValueBytes: 6 }), ['s=ééé']);
    throwsApi(() => parsePoints('s=éééé', all, { maxValueBytes: 6 }), 'E18008', '"s"');
  });

  it('does not echo huge values in error messages', () => {
    const e = throwsApi(() => parsePoints(`l=${'9'.repeat(90000)}`, all), 'E18110', 'line 1', '"l"');
    assert.ok(e.message.length < 200, e.message);
    const e2 = throwsApi(() => parsePoints(`d=${'x'.repeat(90000)}`, all), 'E18104');
    assert.ok(e2.message.length < 200, e2.message);
    const e3 = throwsApi(() => parsePoints(`${'k'.repeat(90000)}=1`, all), 'E18111');
    assert.ok(e3.message.length < 200, e3.message);
  });
});

describe('escapes and decodeLine', () => {
  it('unescapes \\t, \\n, \\r and \\\\ in string values and keeps unknown escapes and a trailing backslash', () => {
    assert.equal(one('s=a\\tb\\nc\\rd\\\\e').s, 'a\tb\nc\rd\\e');
    assert.equal(one('s=C:\\data\\x').s, 'C:\\data\\x');
    assert.equal(one('s=end\\').s, 'end\\');
    assert.equal(one('s=\\\\n').s, '\\n');
    // jsonstring is JSON text: its own escapes are kept (see test/escapes.test.ts).
    assert.equal(one('j={"a":"x\\\\y"}').j, '{"a":"x\\\\y"}');
  });

  it('decodes every type to its JS value and leaves absent fields absent', () => {
    const p = one('l=42\tf=1.5\ts=x\td=2017-01-02T03:04:05Z\tb=true\tal=[1]\taf=[0.5]\tas=["q"]\tm={"n":-3}');
    assert.deepEqual(p, {
      l: 42, f: 1.5, s: 'x', d: '2017-01-02T03:04:05Z', b: true, al: [1], af: [0.5], as: ['q'], m: { n: -3 },
    });
    assert.equal('j' in p, false);
  });

  it('decodes longs beyond 2^53 as bigint and safe ones as numbers', () => {
    assert.equal(one('l=9007199254740991').l, 9007199254740991);
    assert.equal(one('l=9007199254740992').l, 9007199254740992n);
    assert.equal(one('l=-9223372036854775808').l, -9223372036854775808n);
    assert.deepEqual(one('al=[9007199254740993,1]').al, [9007199254740993n, 1]);
  });

  it('keeps keys that left the schema as text', () => {
    assert.deepEqual(decodeLine('s=a\told=1\\t2', all), { s: 'a', old: '1\t2' });
  });

  it('never lets a "__proto__" key change the prototype of a decoded point', () => {
    const cs = schemaOf([{ key: '__proto__', valtype: 'string' }, { key: 'm', valtype: 'map', schema: [{ key: 'j', valtype: 'jsonstring' }] }]);
    const p = decodeLine(parsePoints('__proto__=x\tm={"j":{"__proto__":1}}', cs)[0] as string, cs);
    assert.equal(Object.getPrototypeOf(p), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(p, '__proto__')?.value, 'x');
  });
});

describe('tags', () => {
  const cs = schemaOf([
    { key: 's', valtype: 'string' },
    { key: 'dc', valtype: 'string', required: true },
    { key: 'l', valtype: 'long' },
  ]);

  it('decodes base64url with or without padding, standard base64, and a "+" turned into a space', () => {
    const line = 'dc=hz\tl=1';
    const b = Buffer.from(line);
    assert.equal(decodeTags(b.toString('base64url')), line);
    assert.equal(decodeTags(b.toString('base64')), line);
    assert.equal(decodeTags(Buffer.from('s=>>>?').toString('base64url')), 's=>>>?');
    const std = Buffer.from('s=>>>').toString('base64');
    assert.ok(std.includes('+'));
    assert.equal(decodeTags(std.replaceAll('+', ' ')), 's=>>>');
  });

  it('drops one trailing newline that SDKs add to a rendered point', () => {
    assert.equal(decodeTags(Buffer.from('dc=hz\n').toString('base64url')), 'dc=hz');
  });

  it('rejects bad base64, empty tags, several lines and non-UTF-8 bytes with E18138', () => {
    throwsApi(() => decodeTags('***'), 'E18138');
    throwsApi(() => decodeTags('abcde'), 'E18138');
    throwsApi(() => decodeTags(''), 'E18138');
    throwsApi(() => decodeTags(Buffer.from('\n').toString('base64url')), 'E18138');
    throwsApi(() => decodeTags(Buffer.from('a=1\nb=2').toString('base64url')), 'E18138');
    throwsApi(() => decodeTags(Buffer.from([0x61, 0x3d, 0xff]).toString('base64url')), 'E18138');
  });

  it('appends tag fields to every point, and a point\'s own value wins over a tag', () => {
    const out = parsePoints('s=a\ns=b\tdc=own\n', cs, { tags: 'dc=hz\tl=7' });
    assert.deepEqual(out, ['s=a\tdc=hz\tl=7', 's=b\tdc=own\tl=7']);
    assert.deepEqual(decodeLine(out[1] as string, cs), { s: 'b', dc: 'own', l: 7 });
  });

  it('lets a tag satisfy a required field', () => {
    throwsApi(() => parsePoints('s=a', cs), 'E18110', '"dc"');
    assert.deepEqual(parsePoints('s=a', cs, { tags: 'dc=x' }), ['s=a\tdc=x']);
  });

  it('validates tags against the schema and names them in errors', () => {
    throwsApi(() => parsePoints('s=a', cs, { tags: 'nope=1' }), 'E18111', 'tags', '"nope"');
    throwsApi(() => parsePoints('s=a', cs, { tags: 'dc=x\tl=abc' }), 'E18110', 'tags', '"l"');
    throwsApi(() => parsePoints('s=a', cs, { tags: 'dc=x\tdc=y' }), 'E18110', 'tags', 'duplicate');
  });

  it('rejects tags spanning several lines with E18138, so stored lines stay single lines', () => {
    throwsApi(() => parsePoints('s=a', cs, { tags: 'dc=x\ns=b' }), 'E18138');
  });

  it('treats an empty tags option as no tags', () => {
    assert.deepEqual(parsePoints('s=a\tdc=x', cs, { tags: '' }), ['s=a\tdc=x']);
  });
});

describe('encodePoint', () => {
  it('encodes every type into a line that parsePoints accepts and decodeLine reverses', () => {
    const point = {
      l: -9223372036854775808n, f: -0.5, s: 'tab\there\nnew\\line\r', d: '2017-01-02T03:04:05.123456789+08:00', b: false,
      j: 'raw\t{', al: [1, 9007199254740993n], af: [1e21, -0], as: ['a\tb', '"q"'], m: { n: 7, when: '2017-01-02T03:04:05Z' },
    };
    const line = encodePoint(point, all);
    assert.ok(!line.includes('\n'));
    assert.deepEqual(parsePoints(line, all), [line]);
    assert.deepEqual(decodeLine(line, all), point);
  });

  it('encodes Date objects as RFC 3339 with milliseconds, and epoch milliseconds too', () => {
    assert.equal(encodePoint({ d: new Date(Date.UTC(2017, 0, 2, 3, 4, 5, 6)) }, all), 'd=2017-01-02T03:04:05.006Z');
    assert.equal(encodePoint({ m: { when: new Date(0) } }, all), 'm={"when":"1970-01-01T00:00:00.000Z"}');
    assert.equal(encodePoint({ d: 0 }, all), 'd=1970-01-01T00:00:00.000Z');
  });

  it('skips null and undefined values', () => {
    assert.equal(encodePoint({ s: 'x', l: null, f: undefined, m: { n: null } }, all), 's=x\tm={}');
  });

  it('serialises non-string jsonstring values as JSON text', () => {
    const line = encodePoint({ j: { a: [1, 'x\ty'] } }, all);
    assert.equal(decodeLine(line, all).j, '{"a":[1,"x\\ty"]}');
  });

  it('rejects values that do not fit their type with E18110 naming the field', () => {
    throwsApi(() => encodePoint({ l: 1.5 }, all), 'E18110', '"l"');
    throwsApi(() => encodePoint({ l: 2n ** 63n }, all), 'E18110', '"l"');
    throwsApi(() => encodePoint({ f: Number.NaN }, all), 'E18110', '"f"');
    throwsApi(() => encodePoint({ s: 5 }, all), 'E18110', '"s"');
    throwsApi(() => encodePoint({ d: 'yesterday' }, all), 'E18110', '"d"');
    throwsApi(() => encodePoint({ d: new Date(Number.NaN) }, all), 'E18110', '"d"');
    throwsApi(() => encodePoint({ b: 'true' }, all), 'E18110', '"b"');
    throwsApi(() => encodePoint({ al: [1, 'x'] }, all), 'E18110', 'al[1]');
    throwsApi(() => encodePoint({ m: [] }, all), 'E18110', '"m"');
    throwsApi(() => encodePoint({ m: { zz: 1 } }, all), 'E18110', 'm.zz');
  });

  it('rejects keys outside the schema with E18111 and missing required fields with E18110', () => {
    throwsApi(() => encodePoint({ nope: 1 }, all), 'E18111', 'nope');
    throwsApi(() => encodePoint({ userName: 'x', age: 1, addresses: [] }, ref), 'E18110', 'profile');
    throwsApi(() => encodePoint({ userName: 'x', age: 1, addresses: [], profile: { position: 'p' } }, ref), 'E18110', 'profile.salary');
  });

  it('accepts numeric strings for long and float fields and normalises them', () => {
    assert.equal(encodePoint({ l: '0042', f: '1e3', al: ['007'] }, all), 'l=42\tf=1000\tal=[7]');
  });
});
