/**
 * tsdb export specs are checked at creation: every mistake is E18303 naming
 * the spec key and why, before anything is stored or sent.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError } from '../src/errors.ts';
import { sinkKind } from '../src/exports/registry.ts';
import { rfc3339Ns } from '../src/exports/tsdb/line.ts';
import { tsdbKind } from '../src/exports/tsdb/sink.ts';
import { repoRow, testConfig } from './sink-harness.ts';

const repo = repoRow('src', [
  { key: 'host', valtype: 'string' },
  { key: 'n', valtype: 'long' },
  { key: 'x', valtype: 'float' },
  { key: 'tags', valtype: 'array', elemtype: 'string' },
  { key: 'req', valtype: 'map', schema: [{ key: 'path', valtype: 'string' }] },
]);
const config = testConfig({ tsdbUrl: 'http://127.0.0.1:8086' });
const base = { destRepoName: 'metrics', series: 'cpu', tags: { host: '#host' }, fields: { n: '#n' } };

async function refused(spec: Record<string, unknown>, pattern: RegExp, cfg = config): Promise<void> {
  await assert.rejects(tsdbKind.validate(spec, { account: 'alice', repo, config: cfg }), (err: Error) => {
    assert.ok(err instanceof ApiError, err.message);
    assert.equal(err.code, 'E18303');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('tsdb export spec', () => {
  test('without PIPELINE_TSDB_URL a tsdb export cannot be created, and the error says how to configure one', async () => {
    await refused(base, /set PIPELINE_TSDB_URL \(e\.g\. http:\/\/127\.0\.0\.1:8086/, testConfig());
  });

  test('a valid spec is stored as sent, unknown fields kept; the type matches case-insensitively', async () => {
    const spec = { ...base, timestamp: '#n', omitInvalid: true, omitEmpty: false, sdkExtra: { a: 1 } };
    assert.deepEqual(await tsdbKind.validate(spec, { account: 'alice', repo, config }), spec);
    assert.equal(sinkKind('TSDB'), tsdbKind);
  });

  test('a #field that is not a field of the repo is refused naming the key and the fields that exist', async () => {
    await refused({ ...base, fields: { v: '#nope' } }, /fields\.v refers to "#nope", which is not a field of the repo \(fields: host, n, x, tags, req\)/);
    await refused({ ...base, tags: { h: '#req.nope' } }, /tags\.h refers to "#req\.nope"/);
    await refused({ ...base, timestamp: '#missing' }, /timestamp refers to "#missing"/);
    await refused({ ...base, fields: { v: 42 } }, /fields\.v must be a "#field" reference/);
  });

  test('arrays and maps are refused as tags or fields', async () => {
    await refused({ ...base, fields: { t: '#tags' } }, /fields\.t refers to "#tags", an array: InfluxDB has no array values/);
    await refused({ ...base, tags: { r: '#req' } }, /tags\.r refers to "#req", a map: refer to one of its fields, e\.g\. "#req\.path"/);
  });

  test('a timestamp must be a long, string or date field', async () => {
    await refused({ ...base, timestamp: '#x' }, /timestamp refers to "#x" of type float/);
    await refused({ ...base, timestamp: '#n', timestampUnit: 'minutes' }, /timestampUnit must be one of auto, s, ms, us, ns/);
  });

  test('names influxd cannot store unchanged are refused', async () => {
    await refused({ ...base, series: 'a\nb' }, /series contains a control character/);
    await refused({ ...base, series: 'ends\\' }, /series "ends\\\\" ends with a backslash/);
    await refused({ ...base, series: '#comment' }, /series must not start with "#"/);
    await refused({ ...base, tags: { 'a\\ b': '#host' } }, /tags\.a\\ b: the name has a backslash before a space/);
    await refused({ ...base, fields: { time: '#n' } }, /fields\.time: "time" is InfluxDB's timestamp column/);
    await refused({ ...base, fields: { host: '#n' } }, /"host" is both a tag and a field name/);
    await refused({ ...base, destRepoName: 'a/b' }, /InfluxDB database names cannot contain \//);
  });

  test('missing or mistyped keys are refused', async () => {
    await refused({ ...base, destRepoName: undefined }, /destRepoName is required/);
    await refused({ ...base, series: '' }, /series is required/);
    await refused({ ...base, fields: {} }, /fields must map at least one field/);
    await refused({ ...base, tags: ['host'] }, /tags must be an object/);
    await refused({ ...base, omitEmpty: 'yes' }, /omitEmpty must be a boolean/);
  });
});

describe('RFC 3339 timestamps', () => {
  test('parse to exact nanoseconds with offsets, and refuse what is not a calendar time', () => {
    assert.equal(rfc3339Ns('1970-01-01T00:00:00Z'), '0');
    assert.equal(rfc3339Ns('1970-01-01T00:00:00.000000001Z'), '1');
    assert.equal(rfc3339Ns('2026-11-30T08:00:00.1+08:00'), '1795996800100000000');
    assert.equal(rfc3339Ns('2024-02-29T00:00:00z'), '1709164800000000000');
    assert.equal(rfc3339Ns('1900-01-01T00:00:00Z'), '-2208988800000000000');
    for (const bad of ['2025-02-29T00:00:00Z', '2026-04-31T00:00:00Z', '2026-11-30T24:00:00Z', '2026-11-30T00:00:60Z', '2026-11-30T00:00:00', '2026-11-30T00:00:00+0800', '2026-11-30T00:00:00.Z', '1600-01-01T00:00:00Z', ' 2026-11-30T00:00:00Z']) {
      assert.equal(rfc3339Ns(bad), undefined, bad);
    }
  });
});
