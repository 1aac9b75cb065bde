/**
 * Fuzzing every endpoint family through app.inject: random methods, paths
 * (known routes with random, long and hostile names), query strings (repeated
 * keys included), headers, bodies (JSON, text points, random bytes, gzip junk),
 * signed, unsigned and wrongly signed. No answer may be a 5xx, and every
 * error answer has the documented shape.
 *
 * FUZZ_RUNS sets the number of requests (default 2,000; the hardening target
 * was measured with FUZZ_RUNS=20000).
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { AK, SK, makeRepo, signRequest, startServer, type TestServer } from './helpers.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

const REPO = 'fuzz_repo';
const DEST = 'fuzz_dest';

const name = fc.oneof(
  fc.constantFrom(REPO, DEST, 'fuzz_group', 'fuzz_tf', 'fuzz_plugin', 'a', '_', 'x'.repeat(128), 'x'.repeat(129), 'n'.repeat(1500), '..', '%2e%2e', '%', '%00', '%ZZ', 'a%2Fb', ''),
  fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,20}$/),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', maxLength: 12 }).map((s) => encodeURIComponent(s)),
);

const path = fc.oneof(
  fc.tuple(
    fc.constantFrom(
      '/v2/repos', '/v2/repos/{}', '/v2/repos/{}/data', '/v2/repos/{}/exists', '/v2/repos/{}/transforms', '/v2/repos/{}/transforms/{}',
      '/v2/repos/{}/transforms/{}/exists', '/v2/repos/{}/transforms/{}/to/{}', '/v2/groups', '/v2/groups/{}', '/v2/groups/{}/actions/start',
      '/v2/groups/{}/actions/stop', '/v2/plugins', '/v2/plugins/{}', '/v2/verify/plugins/{}', '/health', '/', '/v2', '/v2/{}', '/v2/repos/{}/{}',
    ),
    fc.array(name, { minLength: 3, maxLength: 3 }),
  ).map(([t, names]) => {
    let i = 0;
    return t.replace(/\{\}/g, () => names[i++]!);
  }),
  fc.array(fc.string({ maxLength: 10 }).map(encodeURIComponent), { maxLength: 5 }).map((parts) => `/${parts.join('/')}`),
);

const queryValue = fc.oneof(
  fc.constantFrom('', 'true', 'false', '1', '10', '0', '-1', '1001', '99999999999999999999', 'NaN', 'a=b', 'k%3Dv', '%', '%E0%A4%A', 'a,b', REPO),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
);
const query = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom('tags', 'count', 'withDag', 'limit', 'marker', 'from', 'type'), fc.string({ maxLength: 8 }).map(encodeURIComponent)), queryValue), { maxLength: 4 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));

const schemaField = fc.record(
  {
    key: fc.oneof(fc.constantFrom('host', 'n', 'm', 'a b', ''), fc.string({ maxLength: 10 })),
    valtype: fc.oneof(fc.constantFrom('string', 'long', 'float', 'date', 'boolean', 'jsonstring', 'array', 'map', 'bogus'), fc.string({ maxLength: 6 })),
    required: fc.oneof(fc.boolean(), fc.constant('yes')),
    elemtype: fc.constantFrom('long', 'string', 'map', 'x'),
    schema: fc.constantFrom(undefined, [], [{ key: 'z', valtype: 'long' }], 'x'),
  },
  { requiredKeys: [] },
);

/** JSON bodies: repo, group, transform and plugin shapes with random mutations, and any JSON. */
const jsonBody = fc.oneof(
  fc.record(
    {
      region: fc.oneof(fc.constant('nb'), fc.string({ maxLength: 5 }), fc.integer()),
      schema: fc.oneof(fc.array(schemaField, { maxLength: 4 }), fc.jsonValue({ maxDepth: 3 })),
      group: fc.oneof(fc.constant('fuzz_group'), fc.jsonValue({ maxDepth: 1 })),
      options: fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.constant({ withTimestamp: 'ts', unescapeLine: true })),
      description: fc.oneof(fc.string({ maxLength: 50 }), fc.jsonValue({ maxDepth: 2 })),
      container: fc.oneof(fc.record({ type: fc.constantFrom('M16C4', 'M32C8', 'x'), count: fc.oneof(fc.integer({ min: -2, max: 300 }), fc.string()) }), fc.jsonValue({ maxDepth: 2 })),
      mode: fc.constantFrom('sql', 'plugin', 'x'),
      code: fc.oneof(fc.constantFrom(`select * from stream`, 'select 1', 'drop table x', ''), fc.string({ maxLength: 40 })),
      interval: fc.oneof(fc.constantFrom('5m', '1h', '0', '-1'), fc.string({ maxLength: 5 }), fc.integer()),
      plugin: fc.jsonValue({ maxDepth: 3 }),
      spec: fc.jsonValue({ maxDepth: 3 }),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 6 }),
).map((v) => JSON.stringify(v) ?? 'null');

const textBody = fc.oneof(
  fc.array(
    fc.oneof(
      fc.constantFrom('host=a', 'host=a\tn=1', 'n=1\tm=2', 'host=\\t\\n\\\\', 'n=x', 'host', '=', '\t', 'n=99999999999999999999999'),
      fc.string({ maxLength: 30 }),
    ),
    { maxLength: 5 },
  ).map((lines) => lines.join('\n')),
  fc.string({ unit: 'binary', maxLength: 60 }),
);

const bytes = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a));

/** Bodies with the headers that go with them. */
const body: fc.Arbitrary<{ payload?: Buffer; headers: Record<string, string> }> = fc.oneof(
  fc.constant({ headers: {} }),
  jsonBody.map((j) => ({ payload: Buffer.from(j), headers: { 'content-type': 'application/json' } })),
  textBody.map((t) => ({ payload: Buffer.from(t), headers: { 'content-type': 'text/plain' } })),
  bytes.map((b) => ({ payload: b, headers: { 'content-type': 'application/octet-stream' } })),
  textBody.map((t) => ({ payload: gzipSync(t), headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' } })),
  bytes.map((b) => ({ payload: Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), b]), headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' } })),
  fc.tuple(fc.oneof(jsonBody, textBody), fc.constantFrom('deflate', 'br', 'GZIP', 'identity', 'x')).map(([t, enc]) => ({ payload: Buffer.from(t), headers: { 'content-type': 'text/plain', 'content-encoding': enc } })),
);

const extraHeaders = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'x/y'),
    'content-md5': fc.oneof(fc.constant('1B2M2Y8AsgTpgAmY7PHvCg=='), fc.string({ maxLength: 30 })),
    'x-qiniu-date': fc.string({ maxLength: 20 }),
    'x-reqid': fc.string({ maxLength: 20 }),
    'content-length': fc.constantFrom('0', '-1', 'abc', '99999999999'),
  },
  { requiredKeys: [] },
);

/** Requests close to what the SDK sends, so the fuzz also runs the success paths with odd values. */
const plausible = fc.oneof(
  fc.record({
    method: fc.constant('POST'),
    path: fc.constant(`/v2/repos/${REPO}/data`),
    query: fc.oneof(fc.constant(''), fc.constantFrom('?tags=', '?tags=host%3Dt', '?tags=bad')),
    body: fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.integer()), { minLength: 1, maxLength: 5 }).map((rows) => ({
      payload: Buffer.from(rows.map(([h, n]) => `host=${h.replace(/[\t\n\\]/g, '')}\tn=${n}`).join('\n')),
      headers: { 'content-type': 'text/plain' },
    })),
  }),
  fc.record({
    method: fc.constant('POST'),
    path: fc.stringMatching(/^[a-z][a-z0-9_]{0,15}$/).map((n) => `/v2/repos/fz_${n}`),
    query: fc.constant(''),
    body: fc.record({ options: fc.jsonValue({ maxDepth: 4 }), description: fc.string({ maxLength: 30 }), schema: fc.array(schemaField, { minLength: 1, maxLength: 3 }) }).map((b) => ({
      payload: Buffer.from(JSON.stringify({ region: 'nb', ...b })),
      headers: { 'content-type': 'application/json' },
    })),
  }),
  fc.record({
    method: fc.constant('GET'),
    path: fc.constantFrom(`/v2/repos/${REPO}`, '/v2/repos', `/v2/repos/${REPO}/data`, '/v2/groups', '/v2/plugins', `/v2/repos/${REPO}/transforms`, `/v2/repos/${REPO}/exists`),
    query: fc.oneof(fc.constant(''), query),
    body: fc.constant({ headers: {} }),
  }),
).map((r) => ({ ...r, extra: {}, auth: 'signed' }));

const requestArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'GET', 'POST', 'PATCH', 'HEAD', 'OPTIONS'),
  path,
  query,
  body,
  extra: fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: extraHeaders }),
  auth: fc.constantFrom('signed', 'signed', 'signed', 'signed', 'signed', 'unsigned', 'wrong', 'garbage', 'old-date'),
});

type Req = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;
const anyRequest: fc.Arbitrary<Req> = fc.oneof({ weight: 3, arbitrary: requestArb }, { weight: 1, arbitrary: plausible as fc.Arbitrary<Req> });

/** Header values must be latin1 without CR/LF or the request cannot be sent at all. */
function headerSafe(v: string): string {
  return v.replace(/[^\x20-\x7e]/g, '?');
}

async function send(s: TestServer, r: Req): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { date: new Date().toUTCString(), ...r.body.headers };
  for (const [k, v] of Object.entries(r.extra)) {
    // A wrong content-length makes the injected request inconsistent with itself; only send it without a body.
    if (k === 'content-length' && r.body.payload) continue;
    headers[k] = headerSafe(String(v));
  }
  const url = r.path + r.query;
  if (r.auth === 'signed') headers.authorization = `Pandora ${AK}:${signRequest(SK, r.method, url, headers)}`;
  else if (r.auth === 'wrong') headers.authorization = `Pandora ${AK}:${signRequest('not-the-secret-key-123', r.method, url, headers)}`;
  else if (r.auth === 'garbage') headers.authorization = 'Pandora :::';
  else if (r.auth === 'old-date') {
    headers.date = 'Mon, 01 Jan 2001 00:00:00 GMT';
    headers.authorization = `Pandora ${AK}:${signRequest(SK, r.method, url, headers)}`;
  }
  return s.app.inject({ method: r.method as 'GET', url, headers, payload: r.body.payload });
}

describe('fuzz', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
    await makeRepo(s, REPO, [{ key: 'host', valtype: 'string' }, { key: 'n', valtype: 'long' }]);
    await makeRepo(s, DEST, [{ key: 'host', valtype: 'string' }]);
  });
  after(async () => {
    await s.close();
  });

  it(`answers ${RUNS} random requests to every endpoint without a 5xx, errors in the documented shape`, async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(anyRequest, async (r) => {
        const res = await send(s, r);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        assert.ok(res.statusCode < 500, `${res.statusCode} ${res.body}`);
        assert.match(String(res.headers['x-reqid']), /^[0-9a-f]{16}$/);
        if (res.statusCode >= 400 && r.method !== 'HEAD') {
          assert.equal(res.headers['content-type'], 'application/json', res.body);
          const parsed = JSON.parse(res.body) as { error?: unknown };
          assert.equal(typeof parsed.error, 'string', res.body);
        }
      }),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    // The run reached the routes, not only the authentication check.
    const ok = statuses.get(200) ?? 0;
    assert.ok(ok > RUNS / 50, `only ${ok} answers of 200: ${JSON.stringify([...statuses])}`);
    if (process.env.FUZZ_REPORT) console.log(`fuzz statuses over ${RUNS} requests: ${JSON.stringify(Object.fromEntries(statuses))}`);
  });
});
