/**
 * Large push bodies validated on parse worker threads answer exactly as when
 * they are validated on the main thread (ingestWorkers=0): same points
 * stored, same E-codes and messages, nothing stored on failure.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { PARSE_WORKER_MIN_BYTES } from '../src/ingest/parse-pool.ts';
import { fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';

const SCHEMA = [
  { key: 'host', valtype: 'string', required: true },
  { key: 'n', valtype: 'long' },
  { key: 'tag', valtype: 'string' },
];

/** Points of about 60 bytes each (80,000 make ~4.8 MB, above the worker threshold). */
function bigBody(points: number, bad?: number): string {
  const lines: string[] = [];
  for (let i = 0; i < points; i++) lines.push(i === bad ? `host=h${i}\tn=notanumber` : `host=${'h'.repeat(40)}${i}\tn=${i}`);
  return lines.join('\n') + '\n';
}

describe('parse workers', () => {
  let withWorkers: TestServer;
  let inline: TestServer;
  before(async () => {
    withWorkers = await startServer({ ingestWorkers: 2 });
    inline = await startServer({ ingestWorkers: 0 });
  });
  after(async () => {
    await withWorkers.close();
    await inline.close();
  });

  async function both(fn: (s: TestServer) => Promise<unknown>): Promise<[unknown, unknown]> {
    return [await fn(withWorkers), await fn(inline)];
  }

  it('stores a large body (plain, gzip, with tags) and reads it back the same as the main thread does', async () => {
    const body = bigBody(80_000);
    assert.ok(body.length > PARSE_WORKER_MIN_BYTES);
    const [a, b] = await both(async (s) => {
      const repo = await makeRepo(s, fresh('big'), SCHEMA);
      assert.equal((await push(s, repo, body)).statusCode, 200);
      assert.equal((await push(s, repo, gzipSync(body), { 'content-encoding': 'gzip' })).statusCode, 200);
      const tags = Buffer.from('tag=x').toString('base64url');
      const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/data?tags=${tags}`, body, headers: { 'content-type': 'text/plain' } });
      assert.equal(res.statusCode, 200, res.body);
      const got = await s.call({ method: 'GET', url: `/v2/repos/${repo}` });
      const sample = await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=3` });
      return { points: JSON.parse(got.body).stats.points, records: JSON.parse(sample.body).records };
    });
    assert.deepEqual(a, b);
    assert.equal((a as { points: number }).points, 240_000);
    assert.deepEqual((a as { records: Array<{ tag: string }> }).records.map((r) => r.tag), ['x', 'x', 'x']);
  });

  it('decodes a large body in the repo\'s escape mode on the workers as on the main thread', async () => {
    // unescapeLine true: \t and \n become TAB and LF, other backslashes stay; false: everything as sent.
    const line = `host=C:\\new\\x\tn=1\ttag=a\\tb`;
    const body = Array.from({ length: 160_000 }, () => line).join('\n');
    assert.ok(body.length > PARSE_WORKER_MIN_BYTES);
    for (const unescapeLine of [true, false]) {
      const [a, b] = await both(async (s) => {
        const repo = await makeRepo(s, fresh('mode'), SCHEMA, { options: { unescapeLine } });
        const tags = Buffer.from('n=7').toString('base64url');
        const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/data?tags=${tags}`, body, headers: { 'content-type': 'text/plain' } });
        assert.equal(res.statusCode, 200, res.body);
        return JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=1` })).body).records;
      });
      assert.deepEqual(a, b);
      const want = unescapeLine ? { host: 'C:\new\\x', n: 1, tag: 'a\tb' } : { host: 'C:\\new\\x', n: 1, tag: 'a\\tb' };
      assert.deepEqual(a, [want], `unescapeLine ${unescapeLine}`);
    }
  });

  it('refuses a large body with a bad line with the same E-code and message, storing nothing', async () => {
    const body = bigBody(80_000, 77_777);
    const [a, b] = await both(async (s) => {
      const repo = await makeRepo(s, fresh('bad'), SCHEMA);
      const res = await push(s, repo, body);
      const got = await s.call({ method: 'GET', url: `/v2/repos/${repo}` });
      return { status: res.statusCode, body: res.body, points: JSON.parse(got.body).stats.points };
    });
    assert.deepEqual(a, b);
    assert.equal((a as { status: number }).status, 400);
    assert.match((a as { body: string }).body, /E18110.*77778/);
    assert.equal((a as { points: number }).points, 0);
  });

  it('refuses large bodies with invalid UTF-8 or an oversize value alike', async () => {
    const badUtf8 = Buffer.concat([Buffer.from(bigBody(80_000)), Buffer.from([0xff, 0xfe])]);
    const oversize = `${bigBody(80_000)}host=${'v'.repeat(200_000)}`;
    for (const body of [badUtf8, oversize]) {
      const [a, b] = await both(async (s) => {
        const repo = await makeRepo(s, fresh('odd'), SCHEMA);
        const res = await push(s, repo, body);
        return { status: res.statusCode, body: res.body };
      });
      assert.deepEqual(a, b);
      assert.equal((a as { status: number }).status, 400);
    }
  });
});
