/**
 * Escape modes (options.unescapeLine) at the parser level: for generated
 * strings holding backslashes, TAB, LF, CR, U+2028, quotes and any unicode,
 * encoding for a mode then parsing gives the value back, push -> read ->
 * push is the identity, the official clients' bytes read back as the mode
 * says, and jsonstring values come back as the JSON text that was sent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ApiError } from '../src/errors.ts';
import { escapeJson, escapeText, unescapeJson, unescapeText } from '../src/ingest/escapes.ts';
import {
  compileSchema, decodeColumns, decodeLine, encodePoint, escapeModeOf, parsePoints, transcodeLine, type EscapeMode,
} from '../src/ingest/points.ts';
import { validateSchema } from '../src/ingest/schema.ts';
import { goMarshal, sdkEscape, sdkLine, type GoJson } from './escapes-wire.ts';

const RUNS = 1000;
const MODES: readonly EscapeMode[] = ['reference', 'unescape', 'verbatim'];

const FIELDS = validateSchema([
  { key: 's', valtype: 'string' },
  { key: 'j', valtype: 'jsonstring' },
  { key: 'n', valtype: 'long' },
  { key: 't', valtype: 'string' },
]);
const schemas = Object.fromEntries(MODES.map((m) => [m, compileSchema(FIELDS, m)])) as Record<EscapeMode, ReturnType<typeof compileSchema>>;

/** Stores `line` as a push would (parsePoints) and decodes it as a read would. */
function readBack(line: string, mode: EscapeMode): Record<string, unknown> {
  const cs = schemas[mode];
  const stored = parsePoints(line, cs);
  assert.equal(stored.length, 1);
  return decodeLine(stored[0]!, cs);
}

/** Any unicode, with the characters escapes are about made frequent. */
const SPECIAL = ['\\', '\t', '\n', '\r', '\u2028', '\u2029', '"', 't', 'n', 'r', '\\', '=', 'é', '😀', 'u', '{', '}'];
const str = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: fc.constantFrom(...SPECIAL), maxLength: 24 }),
  fc.string({ unit: fc.oneof(fc.constantFrom(...SPECIAL), fc.constantFrom('a', '中', '\u0000', '\u001f')), maxLength: 24 }),
);
/** Strings a mode can carry: all (reference); no two-character `\t` or `\n` (unescape); no TAB or LF (verbatim). */
const carried: Record<EscapeMode, (s: string) => boolean> = {
  reference: () => true,
  unescape: (s) => !/\\[tn]/.test(s),
  verbatim: (s) => !/[\t\n]/.test(s),
};
/** `s` cut down to what the mode carries (generators map into the domain instead of discarding most cases). */
function toCarried(s: string, m: EscapeMode): string {
  if (m === 'verbatim') return s.replace(/[\t\n]/g, '');
  while (m === 'unescape' && /\\[tn]/.test(s)) s = s.replace(/\\([tn])/g, '$1');
  return s;
}
/** Wire text of one value as a client may send it: no raw TAB or LF, anything else. */
const wireText = str.map((s) => s.replace(/[\t\n]/g, ''));

/** JSON values with strings from the same alphabet, integers only (Go and JS print them alike), BMP keys. */
const jsonValue: fc.Arbitrary<GoJson> = fc.letrec<{ v: GoJson }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.integer(), str.filter((s) => !/\p{Cs}/u.test(s)),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: fc.constantFrom('a', 'b', '"', '\\', '\n', 'é', '\u2028'), maxLength: 4 }), tie('v'), { maxKeys: 4, noNullPrototype: true }),
  ),
})).v;
const jsonDoc = fc.oneof(jsonValue.filter((v) => typeof v === 'object' && v !== null));

describe('escape modes: options.unescapeLine', () => {
  it('maps absent/null to the reference mode, true to unescape, false to verbatim, and refuses other values with E18007', () => {
    assert.equal(escapeModeOf(undefined), 'reference');
    assert.equal(escapeModeOf(null), 'reference');
    assert.equal(escapeModeOf({ withIP: '' }), 'reference');
    assert.equal(escapeModeOf({ unescapeLine: null }), 'reference');
    assert.equal(escapeModeOf({ unescapeLine: true }), 'unescape');
    assert.equal(escapeModeOf({ unescapeLine: 'true' }), 'unescape');
    assert.equal(escapeModeOf({ unescapeLine: false }), 'verbatim');
    for (const bad of ['x', 3, [], { unescapeLine: 1 }, { unescapeLine: 'yes' }]) {
      assert.throws(() => escapeModeOf(bad), (e: unknown) => e instanceof ApiError && e.code === 'E18007');
    }
  });

  it('decodes the examples of docs/api.md as documented', () => {
    const cases: Array<[string, Record<EscapeMode, string>]> = [
      ['C:\\new', { reference: 'C:\new', unescape: 'C:\new', verbatim: 'C:\\new' }],
      ['\\\\server\\share', { reference: '\\server\\share', unescape: '\\\\server\\share', verbatim: '\\\\server\\share' }],
      ['a\\tb\\rc', { reference: 'a\tb\rc', unescape: 'a\tb\\rc', verbatim: 'a\\tb\\rc' }],
      ['end\\', { reference: 'end\\', unescape: 'end\\', verbatim: 'end\\' }],
      ['first line\\nsecond line\\\\n', { reference: 'first line\nsecond line\\n', unescape: 'first line\nsecond line\\\n', verbatim: 'first line\\nsecond line\\\\n' }],
    ];
    for (const [wire, want] of cases) {
      for (const m of MODES) assert.equal(readBack(`s=${wire}`, m).s, want[m], `${m}: ${wire}`);
    }
  });

  for (const mode of MODES) {
    describe(`mode ${mode}`, () => {
      it('gives back every string value it can carry: encode for the mode, parse, decode', () => {
        fc.assert(fc.property(str.map((x) => toCarried(x, mode)), str.map((x) => toCarried(x, mode)), (s, t) => {
          assert.ok(carried[mode](s) && carried[mode](t));
          const line = encodePoint({ s, t, n: 1 }, schemas[mode]);
          assert.deepEqual(readBack(line, mode), { s, t, n: 1 });
        }), { numRuns: RUNS });
      });

      it('is the identity for push -> read -> push of any wire text', () => {
        fc.assert(fc.property(wireText, wireText, (a, b) => {
          const first = readBack(`s=${a}\tt=${b}`, mode);
          const again = encodePoint(first, schemas[mode]);
          // The official modes store the same bytes again; the reference mode the same values.
          if (mode !== 'reference') assert.equal(again, `s=${a}\tt=${b}`);
          assert.deepEqual(readBack(again, mode), first);
        }), { numRuns: RUNS });
      });

      it('reads the official SDK\'s bytes as the mode says', () => {
        fc.assert(fc.property(str, (v) => {
          const got = readBack(sdkLine([['s', v]]), mode).s;
          const sent = sdkEscape(v);
          if (mode === 'verbatim') assert.equal(got, sent); // stored and returned exactly as sent
          else if (mode === 'unescape') assert.equal(got, sent.replace(/\\([tn])/g, (_m, c: string) => (c === 't' ? '\t' : '\n')));
          else assert.equal(got, unescapeText(sent.replace(/\r$/, ''), 'reference')); // a CR ending the body ends the line
          if (mode === 'unescape' && carried.unescape(v)) assert.equal(got, v);
        }), { numRuns: RUNS });
      });

      it('keeps a CR as data only in the official modes (the reference mode takes CRLF as a line end)', () => {
        const cs = schemas[mode];
        assert.deepEqual(parsePoints('s=a\r\ns=b\r', cs), mode === 'reference' ? ['s=a', 's=b'] : ['s=a\r', 's=b\r']);
        assert.equal(readBack(encodePoint({ s: 'x\r' }, cs), mode).s, 'x\r');
      });

      it('returns a jsonstring as the JSON text the SDK sent (json.Marshal), whatever its strings hold', () => {
        fc.assert(fc.property(jsonDoc, (v) => {
          const text = goMarshal(v);
          const got = readBack(sdkLine([['j', text]]), mode).j as string;
          assert.equal(got, text);
          assert.deepEqual(JSON.parse(got), v);
        }), { numRuns: RUNS });
      });

      it('keeps a raw CR inside a jsonstring\'s JSON string, also when it ends the line', () => {
        for (const j of ['{"a":"x\ry"}', '"open\r', '"open\\\r']) {
          const line = encodePoint({ j }, schemas[mode]);
          assert.equal(readBack(line, mode).j, j);
          assert.equal(decodeLine(line, schemas[mode]).j, j);
        }
      });

      it('returns a pretty-printed jsonstring sent with escaped whitespace as the document sent', () => {
        fc.assert(fc.property(jsonDoc, fc.constantFrom('\t', '  ', '\r\n'), (v, indent) => {
          const text = JSON.stringify(v, null, indent);
          assert.equal(readBack(`j=${escapeJson(text, 'reference')}`, mode).j, text);
          assert.equal(readBack(sdkLine([['j', text.replaceAll('\r', '')]]), mode).j, text.replaceAll('\r', ''));
        }), { numRuns: RUNS / 4 });
      });

      it('round-trips jsonstring text through encodePoint: JSON documents exactly, and text without JSON strings', () => {
        // Outside JSON strings the official modes have no escape for a backslash: such text keeps none before t, n, r.
        const plain = str.filter((x) => !x.includes('"')).map((x) => (mode === 'reference' ? x : x.replace(/\\(?=[tnr])/g, '/')));
        fc.assert(fc.property(fc.oneof(jsonDoc.map((v) => JSON.stringify(v)), fc.json(), plain), (text) => {
          assert.equal(readBack(encodePoint({ j: text }, schemas[mode]), mode).j, text);
        }), { numRuns: RUNS });
      });

      it('decodes columns (transform staging) exactly as decodeLine does', () => {
        fc.assert(fc.property(fc.array(fc.tuple(wireText, wireText), { minLength: 1, maxLength: 5 }), (rows) => {
          const cs = schemas[mode];
          const lines = rows.map(([a, b]) => `s=${a}\tj=${b}\tn=7`);
          const cols: unknown[][] = cs.fields.map(() => []);
          decodeColumns(lines, 0, lines.length, cs, cols);
          lines.forEach((l, r) => {
            const p = decodeLine(l, cs);
            cs.fields.forEach((f, c) => assert.deepEqual(cols[c]![r], p[f.key]));
          });
        }), { numRuns: RUNS / 4 });
      });
    });
  }

  it('transcodes stored lines for a reader of another mode without changing any value it can carry', () => {
    const pair = fc.tuple(fc.constantFrom(...MODES), fc.constantFrom(...MODES));
    fc.assert(fc.property(pair.chain(([from, to]) => fc.tuple(fc.constant(from), fc.constant(to), str.map((x) => toCarried(toCarried(x, from), to)))), jsonDoc, ([from, to, s], doc) => {
      const j = JSON.stringify(doc);
      const stored = encodePoint({ s, j, n: 5 }, schemas[from]);
      const line = transcodeLine(stored, schemas[from], to);
      assert.deepEqual(readBack(line, to), { s, j, n: 5 });
      if (from === to) assert.equal(line, stored);
    }), { numRuns: RUNS });
  });

  it('escapes and unescapes plain text as inverses over every mode\'s carried strings', () => {
    fc.assert(fc.property(fc.constantFrom(...MODES).chain((m) => fc.tuple(fc.constant(m), str.map((x) => toCarried(x, m)))), ([m, s]) => {
      const wire = escapeText(s, m);
      assert.ok(!/[\t\n]/.test(wire));
      assert.equal(unescapeText(wire, m), s);
    }), { numRuns: RUNS });
  });

  it('escapes jsonstring text to a single wire value, whatever it holds', () => {
    fc.assert(fc.property(str, fc.constantFrom(...MODES), (s, m) => {
      const wire = escapeJson(s, m);
      assert.ok(!/[\t\n]/.test(wire));
      assert.doesNotThrow(() => unescapeJson(wire, m));
    }), { numRuns: RUNS });
  });
});
