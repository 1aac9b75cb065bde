/**
 * Escape modes and jsonstring through the HTTP API, driven with the bytes
 * the official Go SDK and logkit send (see escapes-wire.ts for where those
 * come from): create a repo with each `options.unescapeLine`, push, read
 * back with GET data, push what was read again, and run a SQL transform.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { goMarshal, referenceLine, sdkBody, sdkEscape, type GoJson } from './escapes-wire.ts';

type Mode = 'absent' | true | false;
const MODES: readonly Mode[] = ['absent', true, false];

const SCHEMA = [
  { key: 'msg', valtype: 'string' },
  { key: 'path', valtype: 'string' },
  { key: 'n', valtype: 'long' },
  { key: 'obj', valtype: 'jsonstring' },
];

/** String values an application hands the SDK (as Go strings). */
const VALUES = [
  'C:\\new\\table',
  '\\\\server\\share',
  'tab\there, newline\nthere',
  'a literal \\t and \\n and \\r and \\\\',
  'carriage\rreturn',
  'quote " and \'single\'',
  'line\u2028separator\u2029paragraph',
  '中文 😀 é',
  'trailing backslash\\',
  '',
];

/** Nested maps the SDK's schema-free mode types as jsonstring and sends as json.Marshal text. */
const DOCS: GoJson[] = [
  { path: 'C:\\new', re: '^\\d+\\.\\d+$', q: 'say "hi"', nl: 'a\nb\tc\rd' },
  { html: '<a href="x">&amp;</a>', sep: '\u2028\u2029', uni: '中文 😀', empty: '' },
  { nested: { list: [1, 'x\\y', null, true, { deep: '\\\\server\\share' }] }, esc: '\\u0041 is not A' },
  [{ a: 1 }, 'tail\\'],
];

/** Generated Go strings: any unicode, with backslashes, TAB, LF, CR, U+2028 and quotes made frequent. */
const goString = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: fc.constantFrom('\\', '\t', '\n', '\r', '\u2028', '"', 't', 'n', 'r', 'x', '中'), maxLength: 20 }),
);

/** Points as the client each mode is made for sends them: the SDK for the official modes, a reference client for the other. */
const clientBody = (mode: Mode, points: ReadonlyArray<ReadonlyArray<readonly [string, string]>>) =>
  mode === 'absent' ? points.map(referenceLine).join('\n') : sdkBody(points);

/** What a repo of each mode gives back for a value the SDK sent (docs/api.md "Escapes"). */
function expected(mode: Mode, value: string): string {
  const sent = sdkEscape(value);
  if (mode === false) return sent;
  if (mode === true) return sent.replace(/\\([tn])/g, (_m, c: string) => (c === 't' ? '\t' : '\n'));
  return sent.replace(/\\([tnr\\])/g, (_m, c: string) => ({ t: '\t', n: '\n', r: '\r', '\\': '\\' })[c] ?? c);
}

describe('escape modes through the HTTP API', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  const create = (name: string, mode: Mode, schema: unknown = SCHEMA) =>
    makeRepo(s, name, schema, mode === 'absent' ? {} : { options: { withIP: '', withTimestamp: '', unescapeLine: mode } });
  const getRepo = async (name: string) => JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${name}` })).body) as Record<string, any>;
  const records = async (repo: string, count = 10) => {
    const res = await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=${count}` });
    assert.equal(res.statusCode, 200, res.body);
    return (JSON.parse(res.body) as { records: Array<Record<string, unknown>> }).records;
  };
  /** The stored lines of a repo, as the log holds them. */
  const stored = async (repo: string) => {
    const row = s.ctx.repos.must('alice', repo);
    const log = await s.ctx.repos.log('alice', row);
    return (await log.read(log.startOffset(), 1000)).lines;
  };
  /** A point as the SDK's PointField list: every key the record has, values as the SDK formats them. */
  const asSdkPoint = (r: Record<string, unknown>) => Object.entries(r).map(([k, v]) => [k, typeof v === 'string' ? v : String(v)] as const);

  it('shows unescapeLine in GET as created, keeps it through PUT, and refuses a malformed one with E18007', async () => {
    const t = await create(fresh('on'), true);
    const f = await create(fresh('off'), false);
    const a = await create(fresh('absent'), 'absent');
    assert.equal((await getRepo(t)).options.unescapeLine, true);
    assert.equal((await getRepo(f)).options.unescapeLine, false);
    assert.equal((await getRepo(a)).options, undefined);
    // The SDK's UpdateRepo repeats options; the mode is fixed at creation, so a different value changes nothing.
    const put = await s.call({ method: 'PUT', url: `/v2/repos/${f}`, body: { schema: SCHEMA, options: { unescapeLine: true } } });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal((await getRepo(f)).options.unescapeLine, false);
    assert.equal((await push(s, f, 'path=C:\\new')).statusCode, 200);
    assert.deepEqual(await records(f), [{ path: 'C:\\new' }]);
    // "true" from a loosely typed client is stored as a boolean.
    const str = await makeRepo(s, fresh('str'), SCHEMA, { options: { unescapeLine: 'true' } });
    assert.equal((await getRepo(str)).options.unescapeLine, true);
    for (const options of ['yes', 3, { unescapeLine: 'maybe' }, { unescapeLine: 0 }]) {
      const name = fresh('bad');
      const res = await s.call({ method: 'POST', url: `/v2/repos/${name}`, body: { region: 'nb', schema: SCHEMA, options } });
      assert.equal(errorCode(res), 'E18007', JSON.stringify(options));
      assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/repos/${name}` })), 'E18102');
    }
  });

  for (const mode of MODES) {
    it(`reads back the Go SDK's string values as unescapeLine ${String(mode)} says`, async () => {
      const repo = await create(fresh('sdk'), mode);
      const body = sdkBody(VALUES.map((v, i) => [['msg', v], ['n', String(i)]]));
      assert.equal((await push(s, repo, body)).statusCode, 200);
      const got = await records(repo);
      assert.deepEqual(got.map((r) => r.msg), VALUES.map((v) => expected(mode, v)));
      if (mode === false) assert.deepEqual(await stored(repo), body.split('\n'), 'stored exactly as sent');
    });

    it(`returns jsonstring values as the JSON text json.Marshal made (unescapeLine ${String(mode)})`, async () => {
      const repo = await create(fresh('json'), mode);
      const body = sdkBody(DOCS.map((d, i) => [['obj', goMarshal(d)], ['n', String(i)]]));
      // logkit may gzip its bodies (gzip option of the sender).
      assert.equal((await push(s, repo, gzipSync(body), { 'content-encoding': 'gzip' })).statusCode, 200);
      const got = await records(repo);
      assert.deepEqual(got.map((r) => r.obj), DOCS.map(goMarshal));
      assert.deepEqual(got.map((r) => JSON.parse(r.obj as string)), DOCS);
    });

    it(`stores the same bytes again when what was read is pushed again the SDK's way (unescapeLine ${String(mode)})`, async () => {
      const first = await create(fresh('first'), mode);
      const second = await create(fresh('second'), mode);
      // GET data answers at most 10 points: one round per batch.
      for (const batch of [VALUES.map((v, i) => [['path', v], ['n', String(i)]] as const), DOCS.map((d) => [['obj', goMarshal(d)]] as const)]) {
        assert.equal((await push(s, first, sdkBody(batch))).statusCode, 200);
        const read = await records(first, batch.length);
        assert.equal((await push(s, second, sdkBody(read.map(asSdkPoint)))).statusCode, 200);
        assert.deepEqual(await records(second, batch.length), read);
      }
      // In the official modes the bytes, too: what logkit sends is what is stored, read after read.
      if (mode !== 'absent') assert.deepEqual(await stored(second), await stored(first));
    });
  }

  it('round-trips generated strings and JSON documents the SDK sends, in every mode', async () => {
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...MODES),
      fc.array(goString, { minLength: 1, maxLength: 10 }),
      fc.array(fc.dictionary(fc.constantFrom('a', 'b\\', 'c"'), goString, { noNullPrototype: true }), { minLength: 1, maxLength: 10 }),
      async (mode, strings, docs) => {
        const first = await create(fresh('gen'), mode);
        const second = await create(fresh('gen'), mode);
        assert.equal((await push(s, first, sdkBody(strings.map((v) => [['msg', v]])))).statusCode, 200);
        const read = await records(first, strings.length);
        // The reference mode takes a CR ending a line as part of CRLF; the official modes keep it.
        assert.deepEqual(read.map((r) => r.msg), strings.map((v) => expected(mode, mode === 'absent' ? v.replace(/\r$/, '') : v)));
        // Pushed again by the client the mode is made for (the SDK does not escape backslashes, a reference client does).
        assert.equal((await push(s, second, clientBody(mode, read.map(asSdkPoint)))).statusCode, 200);
        assert.deepEqual(await records(second, strings.length), read);
        if (mode !== 'absent') assert.deepEqual(await stored(second), await stored(first));
        assert.equal((await push(s, first, sdkBody(docs.map((d) => [['obj', goMarshal(d)]])))).statusCode, 200);
        const objs = (await records(first, docs.length)).map((r) => r.obj as string);
        assert.deepEqual(objs, docs.map(goMarshal));
        assert.deepEqual(objs.map((o) => JSON.parse(o)), docs);
      },
    ), { numRuns: 40 });
  });

  it('reads lines stored before escape modes existed as before, jsonstring values now as the JSON sent', async () => {
    // Repos created before modes carry no options; their logs hold the lines as pushed. Append such lines directly.
    const repo = await create(fresh('old'), 'absent');
    const old = [
      'msg=a\\tb\\\\c\tpath=C:\\data',
      `obj=${goMarshal({ p: 'C:\\new', q: '"', nl: 'x\ny' })}`,
    ];
    const row = s.ctx.repos.must('alice', repo);
    await (await s.ctx.repos.log('alice', row)).append(old);
    const got = await records(repo);
    assert.deepEqual(got[0], { msg: 'a\tb\\c', path: 'C:\\data' });
    assert.deepEqual(JSON.parse(got[1]!.obj as string), { p: 'C:\\new', q: '"', nl: 'x\ny' });
  });

  it('decodes repos created before escape modes by the options they were created with (malformed ones as the reference)', async () => {
    // Before modes, create() kept `options` unvalidated: insert such rows as that server stored them.
    const insert = (options: unknown) => {
      const name = fresh('pre');
      const now = new Date().toISOString();
      s.ctx.meta.insertRepo('alice', {
        name, uid: 'a0b1c2d3e4f5', region: 'nb', group: null, schema: SCHEMA as any, derivedFrom: null,
        extra: { options }, createTime: now, updateTime: now,
      });
      return name;
    };
    const logkit = insert({ withIP: '', withTimestamp: '', unescapeLine: false });
    const odd = insert({ unescapeLine: 'yes' });
    for (const repo of [logkit, odd]) assert.equal((await push(s, repo, 'path=C:\\new')).statusCode, 200);
    assert.deepEqual(await records(logkit), [{ path: 'C:\\new' }]);
    assert.deepEqual(await records(odd), [{ path: 'C:\new' }]);
  });

  describe('SQL transforms', () => {
    const transform = async (src: string, name: string, dest: string, code: string) => {
      const res = await s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/${name}/to/${dest}`, body: { mode: 'sql', code, interval: '5s' } });
      assert.equal(res.statusCode, 200, res.body);
      await s.ctx.runner.runNow('alice', src, name);
    };

    for (const mode of MODES) {
      it(`carries jsonstring and string values unchanged from a repo of unescapeLine ${String(mode)} to a derived repo`, async () => {
        const src = await create(fresh('tsrc'), mode);
        const body = sdkBody(DOCS.map((d, i) => [['obj', goMarshal(d)], ['msg', VALUES[i]!], ['n', String(i)]]));
        assert.equal((await push(s, src, body)).statusCode, 200);
        const dest = fresh('tdest');
        await transform(src, 'copy', dest, `select n, obj, msg from ${src} order by n`);
        const d = await getRepo(dest);
        assert.equal(d.options, undefined, 'a derived repo has the reference mode');
        assert.deepEqual(d.schema.map((f: any) => [f.key, f.valtype]), [['n', 'long'], ['obj', 'string'], ['msg', 'string']]);
        const srcRecords = await records(src);
        assert.deepEqual(await records(dest), srcRecords.map((r) => ({ n: r.n, obj: r.obj, msg: r.msg })));
        assert.deepEqual((await records(dest)).map((r) => JSON.parse(r.obj as string)), DOCS);
      });
    }

    it('carries values through a JavaScript plugin from a repo of one mode into repos of others', async () => {
      const plugin = fresh('com.x.Pass').replace(/_/g, '');
      const code = 'export default (p) => ({ n: p.n, obj: p.obj, msg: p.msg });';
      const up = await s.call({ method: 'POST', url: `/v2/plugins/${plugin}`, body: code, headers: { 'content-type': 'application/javascript' } });
      assert.equal(up.statusCode, 200, up.body);
      const src = await create(fresh('psrc'), true);
      // Values both an `unescape` and a `verbatim` repo carry: no TAB or LF, no two-character \t or \n.
      const values = VALUES.filter((v) => !/\\[tn]/.test(v) && !/[\t\n]/.test(v)).slice(0, DOCS.length);
      const body = sdkBody(DOCS.map((d, i) => [['obj', goMarshal(d)], ['msg', values[i]!], ['n', String(i)]]));
      assert.equal((await push(s, src, body)).statusCode, 200);
      const output = [{ name: 'n', type: 'long' }, { name: 'obj', type: 'string' }, { name: 'msg', type: 'string' }];
      const created = fresh('pdest');
      // A string holding JSON text keeps its \n escapes in a verbatim repo (an unescape repo would read them as LF).
      const existing = await create(fresh('pexist'), false, [{ key: 'n', valtype: 'long' }, { key: 'obj', valtype: 'string' }, { key: 'msg', valtype: 'string' }]);
      for (const [name, dest] of [['p1', created], ['p2', existing]] as const) {
        const res = await s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/${name}/to/${dest}`, body: { plugin: { name: plugin, output }, interval: '5s' } });
        assert.equal(res.statusCode, 200, res.body);
        await s.ctx.runner.runNow('alice', src, name);
        assert.deepEqual(await records(dest), await records(src), dest);
      }
    });

    it('encodes output for the destination\'s mode when it writes into an existing repo', async () => {
      const src = await create(fresh('xsrc'), 'absent');
      const body = [
        `n=1\tobj=${goMarshal(DOCS[0]!)}\tmsg=${'tab\\there C:\\\\new'}`,
        `n=2\tobj=${goMarshal(DOCS[2]!)}\tmsg=${'plain \\\\\\\\server'}`,
      ].join('\n');
      assert.equal((await push(s, src, body)).statusCode, 200);
      // jsonstring output arrives as a string (a transform's output is plain string, official-extensions 1.1).
      const dest = await create(fresh('xdest'), false, [{ key: 'n', valtype: 'long' }, { key: 'obj', valtype: 'string' }, { key: 'msg', valtype: 'string' }]);
      await transform(src, 'into', dest, `select n, obj, msg from ${src} order by n`);
      const got = await records(dest);
      // A verbatim repo holds what an official client would have sent: TAB as \t, backslashes as they are.
      assert.deepEqual(got.map((r) => r.msg), ['tab\\there C:\\new', 'plain \\\\server']);
      assert.deepEqual(got.map((r) => r.obj), [goMarshal(DOCS[0]!), goMarshal(DOCS[2]!)]);
      assert.deepEqual(await stored(dest), [
        `n=1\tobj=${goMarshal(DOCS[0]!)}\tmsg=tab\\there C:\\new`,
        `n=2\tobj=${goMarshal(DOCS[2]!)}\tmsg=plain \\\\server`,
      ]);
    });
  });
});
