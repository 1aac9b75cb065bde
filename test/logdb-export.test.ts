import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { logdbSink } from '../src/exports/logdb/sink.ts';
import { sinkKind } from '../src/exports/registry.ts';
import type { ExportBatch, Sink } from '../src/exports/shared/sink.ts';
import { decodeLine, parsePoints } from '../src/ingest/points.ts';
import { ApiError } from '../src/errors.ts';
import { fresh, makeRepo, startServer, type TestServer } from './helpers.ts';
import { json, queryLog } from './logdb-helpers.ts';

const SOURCE = [
  { key: 'host', valtype: 'string' },
  { key: 'latency', valtype: 'long' },
  { key: 'cpu', valtype: 'float' },
  { key: 'ok', valtype: 'boolean' },
  { key: 'ts', valtype: 'date' },
  { key: 'when', valtype: 'string' },
  { key: 'codes', valtype: 'array', elemtype: 'long' },
  { key: 'req', valtype: 'map', schema: [{ key: 'method', valtype: 'string' }, { key: 'size', valtype: 'long' }] },
  { key: 'js', valtype: 'jsonstring' },
];

/** Runs the sink contract directly: the spec validated and a sink built as the delivery engine does. */
describe('logdb export sink', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  async function setup(spec: Record<string, unknown>, account = 'alice', names: { repo?: string; exportName?: string } = {}): Promise<{ sink: Sink; batch: (from: number, text: string) => ExportBatch; spec: Record<string, unknown> }> {
    const name = await makeRepo(s, names.repo ?? fresh('src'), SOURCE);
    const repo = s.ctx.repos.must(account, name);
    const schema = s.ctx.repos.compiled(account, repo);
    const kind = sinkKind('logDB');
    assert.equal(kind, logdbSink, 'type logDB resolves case-insensitively');
    const valid = await kind.validate(spec, { account, repo, config: s.config });
    const sink = kind.create(valid, { account, exportName: names.exportName ?? fresh('exp'), repo, schema, config: s.config, log: s.app.log, now: Date.now });
    const batch = (from: number, text: string): ExportBatch => {
      const lines = parsePoints(text, schema);
      return { from, lines, times: lines.map(() => Date.now()), points: () => lines.map((l) => decodeLine(l, schema)) };
    };
    return { sink, batch, spec: valid };
  }

  const line = (o: Record<string, string>): string => Object.entries(o).map(([k, v]) => `${k}=${v}`).join('\t');

  it('creates the missing log repo with every source field mapped per section 1.9 when doc is absent (or null, as the SDK sends)', async () => {
    const dest = fresh('dest').toLowerCase();
    await setup({ destRepoName: dest, doc: null, locateIPConfig: null });
    const got = json<{ schema: Array<{ key: string; valtype: string; analyzer?: string; nested?: unknown[] }>; retention: string }>(await s.call({ method: 'GET', url: `/v5/repos/${dest}` }));
    const types = Object.fromEntries(got.schema.map((f) => [f.key, `${f.valtype}${f.analyzer ? `/${f.analyzer}` : ''}`]));
    assert.deepEqual(types, { host: 'string/standard', latency: 'long', cpu: 'float', ok: 'boolean', ts: 'date', when: 'string/standard', codes: 'long', req: 'object', js: 'object' });
    assert.deepEqual(got.schema.find((f) => f.key === 'req')!.nested!.map((f) => (f as { key: string }).key), ['method', 'size']);
    assert.equal(got.retention, '30d');
  });

  it('delivers a batch that is searchable at once, with arrays multi-valued, maps nested and jsonstring keys underscored', async () => {
    const dest = fresh('dest').toLowerCase();
    const { sink, batch } = await setup({ destRepoName: dest });
    const text = [
      line({ host: 'web one', latency: '12', cpu: '0.5', ok: 'true', ts: '2024-05-01T00:00:00.123456789Z', codes: '[200,404]', req: '{"method":"GET","size":10}', js: '{"a.b":{"c.d":"deep"},"n":1}' }),
      line({ host: 'web two', latency: '99', codes: '[500]' }),
    ].join('\n');
    const t0 = Date.now();
    const res = await sink.deliver(batch(0, text), new AbortController().signal);
    assert.deepEqual(res, { ackedThrough: 2, rejected: [] });
    const found = json<{ total: number; data: Array<Record<string, unknown>> }>(await queryLog({ s }, dest, { q: 'codes:404 AND req.method:GET AND js.a_b.c_d:deep' }));
    assert.ok(Date.now() - t0 < 2000, 'searchable within 2 s of delivery');
    assert.equal(found.total, 1);
    assert.deepEqual(found.data[0]!.js, { a_b: { c_d: 'deep' }, n: 1 });
    assert.deepEqual(found.data[0]!.codes, [200, 404]);
    assert.equal(found.data[0]!.ts, '2024-05-01T00:00:00.123456789Z');
    assert.equal(json<{ total: number }>(await queryLog({ s }, dest, { q: 'host:web AND latency:>50' })).total, 1);
  });

  it('follows a nested doc mapping with #references and bare names', async () => {
    const dest = fresh('dest').toLowerCase();
    const { sink, batch } = await setup({ destRepoName: dest, doc: { server: { name: '#host', load: 'cpu' }, ms: '#latency' } });
    const got = json<{ schema: unknown[] }>(await s.call({ method: 'GET', url: `/v5/repos/${dest}` }));
    assert.deepEqual(got.schema, [
      { key: 'server', valtype: 'object', nested: [{ key: 'name', valtype: 'string', analyzer: 'standard', description: null }, { key: 'load', valtype: 'float', description: null }], description: null },
      { key: 'ms', valtype: 'long', description: null },
    ]);
    await sink.deliver(batch(0, line({ host: 'alpha', latency: '7', cpu: '0.25', ok: 'false' })), new AbortController().signal);
    const data = json<{ data: Array<Record<string, unknown>> }>(await queryLog({ s }, dest, { q: 'server.name:alpha' })).data;
    assert.equal(data.length, 1);
    const { id: _id, ...doc } = data[0]!;
    assert.deepEqual(doc, { server: { name: 'alpha', load: 0.25 }, ms: 7 });
  });

  it('turns values that cannot convert into Rejected records and delivers the rest', async () => {
    const dest = fresh('dest').toLowerCase();
    // An existing log repo where the string "when" must be a date: only RFC 3339 text converts.
    await s.call({ method: 'POST', url: `/v5/repos/${dest}`, body: { region: 'nb', retention: '7d', schema: [{ key: 'when', valtype: 'date' }, { key: 'host', valtype: 'string', analyzer: 'keyword' }] } });
    const { sink, batch } = await setup({ destRepoName: dest, doc: { when: '#when', host: '#host', js: '#js' } });
    const text = [
      line({ host: 'a', when: '2024-01-01T00:00:00Z' }),
      line({ host: 'b', when: 'last tuesday' }),
      line({ host: 'c', js: '{"broken":' }),
      line({ host: 'd', js: '[1,2]' }),
    ].join('\n');
    const res = await sink.deliver(batch(10, text), new AbortController().signal);
    assert.equal(res.ackedThrough, 14);
    assert.deepEqual(res.rejected.map((r) => r.offset), [11, 12, 13]);
    assert.match(res.rejected[0]!.error, /when.*RFC 3339/);
    assert.match(res.rejected[1]!.error, /not valid JSON/);
    const all = json<{ data: Array<{ host: string }> }>(await queryLog({ s }, dest, {}));
    assert.deepEqual(all.data.map((d) => d.host), ['a']);
    const schema = json<{ schema: Array<{ key: string; valtype: string }> }>(await s.call({ method: 'GET', url: `/v5/repos/${dest}` })).schema;
    assert.deepEqual(schema.map((f) => `${f.key}:${f.valtype}`), ['when:date', 'host:string', 'js:object'], 'a mapped field missing from the log repo is added');
    // The same through the direct path for scalar-only mappings.
    const flat = await setup({ destRepoName: dest, doc: { when: '#when', host: '#host' } });
    const res2 = await flat.sink.deliver(flat.batch(0, [line({ host: 'e', when: '2024-01-02T00:00:00+08:00' }), line({ host: 'f', when: 'noon' })].join('\n')), new AbortController().signal);
    assert.deepEqual(res2.rejected.map((r) => r.offset), [1]);
    assert.match(res2.rejected[0]!.error, /field "when": expected an RFC 3339 date/);
    assert.deepEqual(json<{ data: Array<{ host: string }> }>(await queryLog({ s }, dest, { sort: 'host' })).data.map((d) => d.host), ['a', 'e']);
  });

  it('drops records with no mapped value when omitEmpty is true, and stores them empty otherwise', async () => {
    for (const omitEmpty of [true, false]) {
      const dest = fresh('dest').toLowerCase();
      const { sink, batch } = await setup({ destRepoName: dest, doc: { l: '#latency' }, omitEmpty });
      const res = await sink.deliver(batch(0, [line({ host: 'x', latency: '1' }), line({ host: 'y' })].join('\n')), new AbortController().signal);
      assert.deepEqual(res, { ackedThrough: 2, rejected: [] });
      assert.equal(json<{ total: number }>(await queryLog({ s }, dest, {})).total, omitEmpty ? 1 : 2);
    }
  });

  it('indexes each source offset once when the engine redelivers after a crash', async () => {
    const dest = fresh('dest').toLowerCase();
    const { sink, batch } = await setup({ destRepoName: dest, doc: { h: '#host' } });
    const lines = Array.from({ length: 6 }, (_, i) => line({ host: `h${i}` }));
    await sink.deliver(batch(0, lines.slice(0, 4).join('\n')), new AbortController().signal);
    // Offsets 0-3 acked but (as after a crash) not committed: the engine re-reads from 2.
    const again = await sink.deliver(batch(2, lines.slice(2).join('\n')), new AbortController().signal);
    assert.equal(again.ackedThrough, 6);
    const hosts = json<{ data: Array<{ h: string }> }>(await queryLog({ s }, dest, { size: 100, sort: 'h' })).data.map((d) => d.h);
    assert.deepEqual(hosts, ['h0', 'h1', 'h2', 'h3', 'h4', 'h5']);
  });

  it('indexes the offsets of a source repo created again under the same name', async () => {
    const dest = fresh('dest').toLowerCase();
    const repo = fresh('again');
    const first = await setup({ destRepoName: dest, doc: { h: '#host' } }, 'alice', { repo, exportName: 'e' });
    await first.sink.deliver(first.batch(0, [line({ host: 'old0' }), line({ host: 'old1' })].join('\n')), new AbortController().signal);
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${repo}` })).statusCode, 200);
    const second = await setup({ destRepoName: dest, doc: { h: '#host' } }, 'alice', { repo, exportName: 'e' });
    await second.sink.deliver(second.batch(0, line({ host: 'new0' })), new AbortController().signal);
    const hosts = json<{ data: Array<{ h: string }> }>(await queryLog({ s }, dest, { sort: 'h' })).data.map((d) => d.h);
    assert.deepEqual(hosts, ['new0', 'old0', 'old1']);
  });

  it('previews documents without writing them', async () => {
    const dest = fresh('dest').toLowerCase();
    const { sink, batch } = await setup({ destRepoName: dest, doc: { h: '#host', n: '#latency' } });
    const p = await sink.preview(batch(0, [line({ host: 'p', latency: '3' })].join('\n')));
    assert.deepEqual(p, { rendered: { destRepoName: dest, docs: [{ h: 'p', n: 3 }] }, rejected: [] });
    assert.equal(json<{ total: number }>(await queryLog({ s }, dest, {})).total, 0);
  });

  it('rejects specs with a bad destination name, unknown fields or a type the log repo cannot hold (E18303)', async () => {
    const dest = fresh('dest').toLowerCase();
    await s.call({ method: 'POST', url: `/v5/repos/${dest}`, body: { region: 'nb', retention: '7d', schema: [{ key: 'n', valtype: 'long' }] } });
    for (const spec of [
      { destRepoName: 'Upper' },
      { destRepoName: fresh('d').toLowerCase(), doc: { a: '#nosuch' } },
      { destRepoName: fresh('d').toLowerCase(), doc: { a: 42 } },
      { destRepoName: fresh('d').toLowerCase(), doc: 'host' },
      { destRepoName: dest, doc: { n: '#host' } },
      { destRepoName: fresh('d').toLowerCase(), omitEmpty: 'yes' },
    ]) {
      await assert.rejects(setup(spec), (err: unknown) => err instanceof ApiError && err.code === 'E18303', JSON.stringify(spec));
    }
  });

  it('writes into the log repo of the export\'s own account only', async () => {
    const dest = fresh('dest').toLowerCase();
    const { sink, batch } = await setup({ destRepoName: dest, doc: { h: '#host' } }, 'alice');
    await sink.deliver(batch(0, line({ host: 'mine' })), new AbortController().signal);
    const bob = await s.call({ method: 'GET', url: `/v5/repos/${dest}/search?q=mine`, ak: 'test-access-key-2', sk: 'other-secret-key-0123456789' });
    assert.equal(bob.statusCode, 404);
  });
});
