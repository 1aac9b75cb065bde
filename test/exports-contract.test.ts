/**
 * The engine's side of the sink contract (src/exports/shared/sink.ts), checked
 * with a contract-test sink kind registered only in this test process
 * ("contract_probe"): a buffering sink that acks only from tick(), a sink that
 * rejects records it cannot convert, and a sink whose creation fails at first.
 * The real sinks (http here, kodo, tsdb) are tested against real targets in
 * their own files.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SINK_KINDS } from '../src/exports/registry.ts';
import { fieldRef, mustField, valueAt } from '../src/exports/shared/fields.ts';
import { ApiError } from '../src/errors.ts';
import type { SchemaField } from '../src/ingest/types.ts';
import type { ExportBatch, SinkKind } from '../src/exports/shared/sink.ts';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { getExport, waitFor } from './exports-helpers.ts';

interface Probe {
  buffered: string[];
  flushed: string[];
  /** tick() flushes only while true. */
  flush: boolean;
  /** create() throws while > 0 (counts down). */
  failCreates: number;
  created: number;
  closed: number;
  bufferedEnd: number;
  /** deliver() calls. */
  calls: number;
}
const probes = new Map<string, Probe>();
const probe = (name: string): Probe => {
  let p = probes.get(name);
  if (!p) probes.set(name, (p = { buffered: [], flushed: [], flush: false, failCreates: 0, created: 0, closed: 0, bufferedEnd: 0, calls: 0 }));
  return p;
};

const probeKind: SinkKind = {
  types: ['contract_probe'],
  async validate(spec, ctx) {
    if (spec.field !== undefined) mustField(ctx.repo.schema, 'field', spec.field);
    return spec;
  },
  create(spec, ctx) {
    const p = probe(ctx.exportName);
    if (p.failCreates > 0) {
      p.failCreates--;
      throw new Error('target not ready');
    }
    p.created++;
    p.buffered = [];
    const mode = spec.mode as string;
    return {
      async deliver(b: ExportBatch) {
        p.calls++;
        const rejected = b.lines.flatMap((l, i) => (l.includes('bad') ? [{ offset: b.from + i, error: `cannot convert ${l}` }] : []));
        const good = b.lines.filter((l) => !l.includes('bad'));
        if (mode === 'buffer') {
          p.buffered.push(...good);
          p.bufferedEnd = b.from + b.lines.length;
          return { ackedThrough: b.from, rejected };
        }
        p.flushed.push(...good);
        return { ackedThrough: b.from + b.lines.length, rejected };
      },
      ...(mode === 'buffer' ? {
        async tick() {
          if (!p.flush || p.buffered.length === 0) return undefined;
          p.flushed.push(...p.buffered);
          p.buffered = [];
          return p.bufferedEnd;
        },
      } : {}),
      async preview(b: ExportBatch) {
        return { rendered: { lines: b.lines }, rejected: [] };
      },
      async close() {
        p.closed++;
      },
    };
  },
};

describe('sink contract, engine side (contract-test sink)', () => {
  let s: TestServer;
  before(async () => {
    (SINK_KINDS as SinkKind[]).push(probeKind);
    s = await startServer({ exportRetryMin: '10ms', exportRetryMax: '40ms' });
  });
  after(async () => {
    await s.close();
    (SINK_KINDS as SinkKind[]).splice(SINK_KINDS.indexOf(probeKind), 1);
  });
  const offset = (repo: string, name: string) => s.ctx.meta.getOffset('alice', `export:${repo}/${name}`)?.nextOffset;

  it('commits a buffering sink\'s points only when tick() acks them, and re-reads unacked points after a restart of the sink', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const p = probe(name);
    assert.equal((await push(s, repo, 'host=a\nhost=b\nhost=c')).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'CONTRACT_PROBE', spec: { mode: 'buffer' } } })).statusCode, 200);
    await waitFor(() => p.buffered.length === 3, 'buffered');
    await new Promise((r) => setTimeout(r, 1200)); // past a tick that may not flush
    assert.equal(offset(repo, name), 0);
    assert.equal((await getExport(s, repo, name)).status.lag.points, 3);
    // A spec change rebuilds the sink: the unacked buffer is gone and re-read from the committed offset.
    assert.equal((await s.call({ method: 'PUT', url: `/v2/repos/${repo}/exports/${name}`, body: { spec: { mode: 'buffer', v: 2 } } })).statusCode, 200);
    await waitFor(() => p.created === 2 && p.buffered.length === 3, 're-read after the rebuild');
    assert.ok(p.closed >= 1);
    p.flush = true;
    await waitFor(() => offset(repo, name) === 3, 'the tick ack', 5000);
    assert.deepEqual(p.flushed, ['host=a', 'host=b', 'host=c']);
    assert.equal((await getExport(s, repo, name)).status.lag.points, 0);
  });

  it('dead-letters the records a sink rejects, with the record, error, export and offset, and delivers the rest', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const p = probe(name);
    assert.equal((await push(s, repo, 'host=ok1\nhost=bad\nhost=ok2')).statusCode, 200);
    const dl = fresh('dl');
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'contract_probe', spec: { mode: 'stream', deadLetterRepo: dl } } })).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.deadLettered === 1, 'the dead letter');
    assert.deepEqual(p.flushed, ['host=ok1', 'host=ok2']);
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.deadLetterRepo, dl);
    assert.equal(st.delivered.total, 2);
    const rows = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dl}/data?count=10` })).body).records;
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0].record, rows[0].error, rows[0].export, rows[0].offset], ['host=bad', 'cannot convert host=bad', name, 1]);
    assert.ok(Date.parse(rows[0].time) > 0);
    // The dead-letter repo is an ordinary typed repo, in the source repo's region.
    const meta = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dl}` })).body);
    assert.deepEqual(meta.schema.map((f: { key: string; valtype: string }) => `${f.key}:${f.valtype}`), ['record:string', 'error:string', 'export:string', 'offset:long', 'time:date']);
  });

  it('retries a sink whose creation fails, with the error in the status, and then delivers', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const p = probe(name);
    p.failCreates = 3;
    assert.equal((await push(s, repo, 'host=a')).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'contract_probe', spec: { mode: 'stream' } } })).statusCode, 200);
    await waitFor(() => p.flushed.length === 1, 'delivery after the failures');
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.lastError, 'target not ready');
    assert.equal(st.state, 'running');
    assert.equal(st.consecutiveFailures, 0);
  });

  it('retries only the dead-letter write when the dead-letter repo cannot take it, without sending the batch again', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const p = probe(name);
    const dl = fresh('dl');
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'contract_probe', spec: { mode: 'stream', deadLetterRepo: dl } } })).statusCode, 200);
    // After the export was created, someone makes the dead-letter repo with other fields.
    await makeRepo(s, dl);
    assert.equal((await push(s, repo, 'host=ok\nhost=bad')).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.consecutiveFailures >= 3, 'failed dead-letter writes');
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.state, 'error');
    assert.match(st.lastError, /record/);
    assert.equal(st.lag.points, 2);
    assert.equal(p.calls, 1);
    // Once the repo is fixed (deleted: the engine creates it), the dead letter is written and the offset moves.
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${dl}` })).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.deadLettered === 1, 'the dead letter');
    assert.equal(p.calls, 1);
    assert.deepEqual(p.flushed, ['host=ok']);
    assert.equal((await getExport(s, repo, name)).status.lag.points, 0);
  });

  it('checks #field references of a spec against the repo at create, naming the key, the reference and the fields', async () => {
    const repo = await makeRepo(s, fresh('repo'), [{ key: 'host', valtype: 'string' }, { key: 'req', valtype: 'map', schema: [{ key: 'path', valtype: 'string' }] }]);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}`, body: { type: 'contract_probe', spec: { field: '#req.path' } } })).statusCode, 200);
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}`, body: { type: 'contract_probe', spec: { field: '#nope' } } });
    assert.equal(errorCode(res), 'E18303');
    assert.match(JSON.parse(res.body).error, /field refers to "#nope", which is not a field of the repo \(fields: host, req\)/);
  });
});

describe('#field references', () => {
  const schema: SchemaField[] = [
    { key: 'host', valtype: 'string', required: false },
    { key: 'req', valtype: 'map', required: false, schema: [{ key: 'path', valtype: 'string', required: false }] },
  ];
  it('reads "#name" and dotted map paths, bare names only when asked and when they name a field', () => {
    assert.deepEqual(fieldRef('#host', schema), ['host']);
    assert.deepEqual(fieldRef('#req.path', schema), ['req', 'path']);
    assert.equal(fieldRef('host', schema), undefined);
    assert.deepEqual(fieldRef('host', schema, { bareNames: true }), ['host']);
    assert.equal(fieldRef('literal text', schema, { bareNames: true }), undefined);
    assert.equal(fieldRef(42, schema), undefined);
    assert.deepEqual(mustField(schema, 'k', '#req.path').field.valtype, 'string');
    assert.throws(() => mustField(schema, 'tags.region', 'region'), (e: unknown) => e instanceof ApiError && /tags.region must be a "#field" reference/.test(e.message));
    assert.throws(() => mustField(schema, 'k', '#req.nope'), (e: unknown) => e instanceof ApiError && /"#req.nope"/.test(e.message));
    assert.equal(valueAt({ req: { path: '/a' } }, ['req', 'path']), '/a');
    assert.equal(valueAt({ req: 'x' }, ['req', 'path']), undefined);
  });
});
