/**
 * The tsdb sink against a real influxd (InfluxDB 1.x, started by test/influx.ts
 * on free ports): points are delivered through the sink contract and read
 * back with InfluxQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../src/config.ts';
import { PermanentSinkError, RetryableSinkError, type Sink } from '../src/exports/shared/sink.ts';
import { quoteIdent } from '../src/exports/tsdb/client.ts';
import { tsdbKind } from '../src/exports/tsdb/sink.ts';
import { fresh } from './helpers.ts';
import { freePort, startInflux, type Influx } from './influx.ts';
import { batchOf, openSink, repoRow, testConfig } from './sink-harness.ts';

const SCHEMA = [
  { key: 'host', valtype: 'string' },
  { key: 'n', valtype: 'long' },
  { key: 'x', valtype: 'float' },
  { key: 'ok', valtype: 'boolean' },
  { key: 's', valtype: 'string' },
  { key: 'at', valtype: 'date' },
  { key: 'ts', valtype: 'long' },
  { key: 'when', valtype: 'string' },
  { key: 'req', valtype: 'map', schema: [{ key: 'path', valtype: 'string' }] },
];

let influx: Influx;
let config: Config;
const sinks: Sink[] = [];
const ac = new AbortController();

before(async () => {
  influx = await startInflux();
  config = testConfig({ tsdbUrl: influx.url });
});
after(async () => {
  for (const s of sinks) await s.close();
  await influx.stop();
});

async function sinkFor(spec: Record<string, unknown>, cfg = config): Promise<Sink> {
  const sink = await openSink(tsdbKind, { series: 'm', ...spec }, repoRow('src', SCHEMA), cfg);
  sinks.push(sink);
  return sink;
}

const all = (db: string, m = 'm'): Promise<Array<Record<string, unknown>>> => influx.rows(`SELECT * FROM ${quoteIdent(m)} ORDER BY time`, db);

describe('tsdb sink, real influxd', () => {
  test('writes long as integer, float, boolean and string fields, creating the database, and reads them back', async () => {
    const db = fresh('db');
    const sink = await sinkFor({ destRepoName: db, tags: { host: '#host' }, fields: { n: '#n', x: '#x', ok: '#ok', s: '#s', at: '#at' } });
    const repo = repoRow('src', SCHEMA);
    const res = await sink.deliver(batchOf(repo, [
      { host: 'a', n: 42, x: 1.5, ok: true, s: 'hello', at: '2026-11-30T06:00:00Z' },
      { host: 'b', n: 9007199254740993n, x: 3, ok: false, s: '' },
      { host: 'c', n: -9223372036854775808n, x: -0.25 },
    ], 10), ac.signal);
    assert.deepEqual(res, { ackedThrough: 13, rejected: [] });
    const types = await influx.rows('SHOW FIELD KEYS', db);
    assert.deepEqual(Object.fromEntries(types.map((t) => [t.fieldKey, t.fieldType])), { at: 'string', n: 'integer', ok: 'boolean', s: 'string', x: 'float' });
    const rows = await all(db);
    assert.deepEqual(rows.map((r) => [r.host, r.n, r.x, r.ok, r.s, r.at]), [
      ['a', 42, 1.5, true, 'hello', '2026-11-30T06:00:00Z'],
      ['b', '9007199254740993', 3, false, '', null],
      ['c', '-9223372036854775808', -0.25, null, null, null],
    ]);
  });

  test('escapes hostile names and values so that influxd stores them unchanged', async () => {
    const db = `db "${fresh('x')}" ,= 'y'`;
    const series = 'cpu load,x=1 "q" \\n';
    const tagName = 'host name,=x"';
    const fieldName = 'value, x=1 "y"';
    const values = ['a,b c=d', 'quote"inside', 'back\\slash', 'ünïcødé 中文', 'tab\there', '=lead', 'tail='];
    const strings = ['say "hi"', 'C:\\dir\\', 'line1\nline2', '\\"', 'tab\tcr\r', '', 'emoji 🚀'];
    const sink = await sinkFor({ destRepoName: db, series, tags: { [tagName]: '#host' }, fields: { [fieldName]: '#s', n: '#n' } });
    const points = values.map((host, i) => ({ host, s: strings[i], n: i }));
    const res = await sink.deliver(batchOf(repoRow('src', SCHEMA), points), ac.signal);
    assert.deepEqual(res.rejected, []);
    const rows = await all(db, series);
    assert.equal(rows.length, values.length);
    const byN = new Map(rows.map((r) => [r.n, r]));
    values.forEach((host, i) => {
      assert.equal(byN.get(i)?.[tagName], host, `tag value ${JSON.stringify(host)}`);
      assert.equal(byN.get(i)?.[fieldName], strings[i], `string value ${JSON.stringify(strings[i])}`);
    });
    const measurements = await influx.rows('SHOW MEASUREMENTS', db);
    assert.deepEqual(measurements.map((m) => m.name), [series]);
  });

  test('a tag value line protocol cannot carry (newline, trailing backslash) is rejected naming the tag; the rest is written', async () => {
    const db = fresh('db');
    const sink = await sinkFor({ destRepoName: db, tags: { host: '#host' }, fields: { n: '#n' } });
    const res = await sink.deliver(batchOf(repoRow('src', SCHEMA), [
      { host: 'fine', n: 1 },
      { host: 'two\nlines', n: 2 },
      { host: 'ends\\', n: 3 },
      { host: 'a\\,b', n: 4 },
      { host: 'mid\\dle', n: 5 },
    ], 100), ac.signal);
    assert.deepEqual(res.rejected.map((r) => r.offset), [101, 102, 103]);
    assert.match(res.rejected[0]?.error ?? '', /tag "host".*newline/);
    assert.match(res.rejected[1]?.error ?? '', /tag "host".*ends with a backslash/);
    assert.equal(res.ackedThrough, 105);
    assert.deepEqual((await all(db)).map((r) => [r.host, r.n]), [['fine', 1], ['mid\\dle', 5]]);
  });

  test('timestamps come from a date field (nanoseconds, offsets), an RFC 3339 string field and a long field in any unit', async () => {
    const db = fresh('db');
    const fromDate = await sinkFor({ destRepoName: db, series: 'd', fields: { n: '#n' }, timestamp: '#at' });
    const fromString = await sinkFor({ destRepoName: db, series: 's', fields: { n: '#n' }, timestamp: '#when' });
    const fromLong = await sinkFor({ destRepoName: db, series: 'l', fields: { n: '#n' }, timestamp: '#ts' });
    const fromMs = await sinkFor({ destRepoName: db, series: 'u', fields: { n: '#n' }, timestamp: '#ts', timestampUnit: 'ms' });
    const repo = repoRow('src', SCHEMA);
    await fromDate.deliver(batchOf(repo, [
      { n: 1, at: '2026-11-30T08:00:00.123456789+08:00' },
      { n: 2, at: '1969-12-31T23:59:59.5Z' },
      { n: 3, at: '2026-11-30T00:00:00.9876543211234Z' },
    ]), ac.signal);
    await fromString.deliver(batchOf(repo, [{ n: 1, when: '2026-11-30T00:00:01-01:30' }]), ac.signal);
    await fromLong.deliver(batchOf(repo, [
      { n: 1, ts: 1_764_460_800 },
      { n: 2, ts: 1_764_460_800_123 },
      { n: 3, ts: 1_764_460_800_123_456 },
      { n: 4, ts: 1_764_460_800_123_456_789n },
    ]), ac.signal);
    await fromMs.deliver(batchOf(repo, [{ n: 1, ts: 5 }]), ac.signal);
    const times = async (m: string): Promise<unknown[]> => (await all(db, m)).map((r) => String(r.time));
    assert.deepEqual(await times('d'), ['-500000000', '1795996800123456789', '1795996800987654321']);
    assert.deepEqual(await times('s'), ['1796002201000000000']);
    assert.deepEqual(await times('l'), ['1764460800000000000', '1764460800123000000', '1764460800123456000', '1764460800123456789']);
    assert.deepEqual(await times('u'), ['5000000']);
  });

  test('a timestamp that does not parse or lies outside InfluxDB range is a rejected record, never dropped silently', async () => {
    const db = fresh('db');
    const sink = await sinkFor({ destRepoName: db, fields: { n: '#n' }, timestamp: '#when' });
    const res = await sink.deliver(batchOf(repoRow('src', SCHEMA), [
      { n: 1, when: '2026-11-30T00:00:00Z' },
      { n: 2, when: 'yesterday' },
      { n: 3, when: '2026-02-30T00:00:00Z' },
      { n: 4, when: '2300-01-01T00:00:00Z' },
      { n: 5 },
      { n: 6, when: '2026-11-30 00:00:00' },
    ], 50), ac.signal);
    assert.deepEqual(res.rejected.map((r) => r.offset), [51, 52, 53, 54, 55]);
    assert.match(res.rejected[0]?.error ?? '', /timestamp field "when": "yesterday" is not an RFC 3339 time/);
    assert.match(res.rejected[3]?.error ?? '', /timestamp field "when" has no value/);
    const longSink = await sinkFor({ destRepoName: db, series: 'l', fields: { n: '#n' }, timestamp: '#ts', timestampUnit: 's' });
    const r2 = await longSink.deliver(batchOf(repoRow('src', SCHEMA), [{ n: 1, ts: 10_000_000_000 }]), ac.signal);
    assert.match(r2.rejected[0]?.error ?? '', /outside InfluxDB's time range/);
    assert.deepEqual((await all(db)).map((r) => r.n), [1]);
  });

  test('without a timestamp field points get their append time plus offset, so a redelivered batch overwrites instead of duplicating', async () => {
    const db = fresh('db');
    const sink = await sinkFor({ destRepoName: db, tags: { host: '#host' }, fields: { n: '#n' } });
    const repo = repoRow('src', SCHEMA);
    const t = Date.UTC(2026, 10, 30, 6, 0, 0, 7);
    const batch = batchOf(repo, Array.from({ length: 300 }, (_, i) => ({ host: 'same', n: i })), 1_000_005, Array(300).fill(t));
    await sink.deliver(batch, ac.signal);
    await sink.deliver(batch, ac.signal);
    const rows = await all(db);
    assert.equal(rows.length, 300, 'one point per record, none collapsed, none duplicated');
    assert.equal(rows[0]?.time, `${t}000005`);
  });

  test('a record whose fields are all empty is rejected, or skipped with omitEmpty', async () => {
    const db = fresh('db');
    const strict = await sinkFor({ destRepoName: db, fields: { n: '#n', x: '#x' } });
    const lenient = await sinkFor({ destRepoName: db, series: 'o', fields: { n: '#n', x: '#x' }, omitEmpty: true });
    const batch = batchOf(repoRow('src', SCHEMA), [{ n: 1 }, { host: 'only tags' }, { x: 2.5 }]);
    const r1 = await strict.deliver(batch, ac.signal);
    assert.deepEqual(r1.rejected.map((r) => r.offset), [1]);
    assert.match(r1.rejected[0]?.error ?? '', /none of the fields \(n, x\) has a value.*omitEmpty/);
    const r2 = await lenient.deliver(batch, ac.signal);
    assert.deepEqual(r2, { ackedThrough: 3, rejected: [] });
    assert.equal((await all(db, 'o')).length, 2);
  });

  test('nested map fields can be tags and fields through dotted references', async () => {
    const db = fresh('db');
    const sink = await sinkFor({ destRepoName: db, tags: { path: '#req.path' }, fields: { n: 'n' } });
    await sink.deliver(batchOf(repoRow('src', SCHEMA), [{ n: 1, req: { path: '/a b' } }]), ac.signal);
    assert.deepEqual((await all(db)).map((r) => [r.path, r.n]), [['/a b', 1]]);
  });

  test('a field type conflict in influxd is a PermanentSinkError (the engine bisects it to the record)', async () => {
    const db = fresh('db');
    const asFloat = await sinkFor({ destRepoName: db, fields: { v: '#x' } });
    const asInt = await sinkFor({ destRepoName: db, fields: { v: '#n' } });
    const repo = repoRow('src', SCHEMA);
    await asFloat.deliver(batchOf(repo, [{ x: 1.5 }]), ac.signal);
    await assert.rejects(asInt.deliver(batchOf(repo, [{ n: 2 }]), ac.signal), (err: Error) => {
      assert.ok(err instanceof PermanentSinkError, err.message);
      assert.match(err.message, /InfluxDB answered 400 to write: .*field type conflict/);
      return true;
    });
  });

  test('an unreachable influxd is a RetryableSinkError', async () => {
    const port = await freePort();
    const sink = await sinkFor({ destRepoName: fresh('db'), fields: { n: '#n' } }, testConfig({ tsdbUrl: `http://127.0.0.1:${port}` }));
    await assert.rejects(sink.deliver(batchOf(repoRow('src', SCHEMA), [{ n: 1 }]), ac.signal), (err: Error) => {
      assert.ok(err instanceof RetryableSinkError, err.message);
      assert.match(err.message, /unreachable/);
      return true;
    });
  });

  test('a database dropped while the export runs is created again', async () => {
    const db = fresh('db');
    const sink = await sinkFor({ destRepoName: db, fields: { n: '#n' } });
    const repo = repoRow('src', SCHEMA);
    await sink.deliver(batchOf(repo, [{ n: 1 }]), ac.signal);
    await influx.query(`DROP DATABASE ${quoteIdent(db)}`);
    await sink.deliver(batchOf(repo, [{ n: 2 }], 1), ac.signal);
    assert.deepEqual((await all(db)).map((r) => r.n), [2]);
  });

  test('preview renders the lines and rejected records and writes nothing', async () => {
    const db = fresh('db');
    const sink = await sinkFor({ destRepoName: db, tags: { host: '#host' }, fields: { n: '#n', s: '#s' }, timestamp: '#ts' });
    const res = await sink.preview(batchOf(repoRow('src', SCHEMA), [{ host: 'a b', n: 1, s: 'q"', ts: 1_764_460_800_000 }, { n: 2 }], 7));
    assert.deepEqual(res.rendered, { database: db, precision: 'ns', lines: ['m,host=a\\ b n=1i,s="q\\"" 1764460800000000000'], skipped: 0 });
    assert.deepEqual(res.rejected, [{ offset: 8, error: 'timestamp field "ts" has no value' }]);
    const dbs = await influx.rows('SHOW DATABASES', '');
    assert.ok(!dbs.some((d) => d.name === db), 'preview created nothing');
  });
});

describe('tsdb sink, influxd with auth', () => {
  let secured: Influx;
  before(async () => {
    secured = await startInflux({ admin: { user: 'admin', password: 'pw-123' } });
  });
  after(() => secured.stop());

  test('writes with the configured user, and a wrong password is retried (never dead letters) with a hint', async () => {
    const db = fresh('db');
    const repo = repoRow('src', SCHEMA);
    const good = await sinkFor({ destRepoName: db, fields: { n: '#n' } }, testConfig({ tsdbUrl: secured.url, tsdbUser: 'admin', tsdbPassword: 'pw-123' }));
    await good.deliver(batchOf(repo, [{ n: 1 }]), ac.signal);
    assert.deepEqual((await secured.rows('SELECT n FROM m', db)).map((r) => r.n), [1]);
    const bad = await sinkFor({ destRepoName: db, fields: { n: '#n' } }, testConfig({ tsdbUrl: secured.url, tsdbUser: 'admin', tsdbPassword: 'wrong' }));
    await assert.rejects(bad.deliver(batchOf(repo, [{ n: 2 }]), ac.signal), (err: Error) => {
      assert.ok(err instanceof RetryableSinkError, err.message);
      assert.match(err.message, /401.*PIPELINE_TSDB_USER/);
      return true;
    });
  });
});
