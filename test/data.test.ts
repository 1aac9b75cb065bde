import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';

describe('data push', () => {
  let s: TestServer;
  before(async () => { s = await startServer({ maxBodySize: '256KB' }); });
  after(async () => { await s.close(); });

  const sample = async (repo: string, count = 10) => {
    const res = await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=${count}` });
    assert.equal(res.statusCode, 200, res.body);
    return (JSON.parse(res.body) as { records: Array<Record<string, unknown>> }).records;
  };

  it('stores typed points and reads them back newest last', async () => {
    const repo = await makeRepo(s);
    const body = 'host=web-1\tlatency=12\tcpu=0.5\tregion=nb\tts=2026-11-24T08:00:00.123456789+08:00\nhost=web\\t2\tlatency=-3\n';
    const res = await push(s, repo, body);
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(res.headers['x-reqid']);
    assert.deepEqual(await sample(repo), [
      { host: 'web-1', latency: 12, cpu: 0.5, region: 'nb', ts: '2026-11-24T08:00:00.123456789+08:00' },
      { host: 'web\t2', latency: -3 },
    ]);
    assert.deepEqual(await sample(repo, 1), [{ host: 'web\t2', latency: -3 }]);
  });

  it('accepts application/text, no trailing newline, CRLF and gzip bodies', async () => {
    const repo = await makeRepo(s);
    assert.equal((await push(s, repo, 'host=a', { 'content-type': 'application/text' })).statusCode, 200);
    assert.equal((await push(s, repo, 'host=b\r\nhost=c\r\n')).statusCode, 200);
    assert.equal((await push(s, repo, gzipSync('host=d\nhost=e'), { 'content-encoding': 'gzip' })).statusCode, 200);
    assert.deepEqual((await sample(repo)).map((r) => r.host), ['a', 'b', 'c', 'd', 'e']);
  });

  it('stores arrays and nested maps and checks them against the schema', async () => {
    const repo = await makeRepo(s, fresh('nested'), [
      { key: 'userName', valtype: 'string', required: true },
      { key: 'addresses', valtype: 'array', elemtype: 'string' },
      { key: 'profile', valtype: 'map', schema: [{ key: 'position', valtype: 'string', required: true }, { key: 'salary', valtype: 'float' }] },
    ]);
    const ok = 'userName=小张\taddresses=["beijing","shanghai"]\tprofile={"position":"engineer","salary":15000}';
    assert.equal((await push(s, repo, ok)).statusCode, 200);
    assert.deepEqual(await sample(repo), [{ userName: '小张', addresses: ['beijing', 'shanghai'], profile: { position: 'engineer', salary: 15000 } }]);
    assert.equal(errorCode(await push(s, repo, 'userName=a\tprofile={"salary":1}')), 'E18110');
    assert.equal(errorCode(await push(s, repo, 'userName=a\taddresses=[1,2]')), 'E18110');
  });

  it('rejects a request atomically and names the line and field', async () => {
    const repo = await makeRepo(s);
    const res = await push(s, repo, 'host=a\tlatency=1\nhost=b\tlatency=2\nhost=c\tlatency=abc\n');
    assert.equal(res.statusCode, 400);
    assert.equal(errorCode(res), 'E18110');
    const msg = (JSON.parse(res.body) as { error: string }).error;
    assert.match(msg, /line 3/);
    assert.match(msg, /latency/);
    assert.deepEqual(await sample(repo), []);
  });

  it('answers each kind of bad input with its code', async () => {
    const repo = await makeRepo(s);
    const cases: Array<[string | Buffer, Record<string, string>, number, string]> = [
      ['', {}, 400, 'E18006'],
      ['\n\n', {}, 400, 'E18006'],
      ['latency=1', {}, 400, 'E18110'], // required host missing
      ['host=a\tnope=1', {}, 404, 'E18111'],
      ['host=a\tts=yesterday', {}, 400, 'E18104'],
      ['host=a\tlatency=9223372036854775808', {}, 400, 'E18110'],
      ['host=a\tlatency', {}, 400, 'E18007'],
      [`host=${'x'.repeat(101 * 1024)}`, {}, 400, 'E18008'],
      [Buffer.from([0x68, 0x6f, 0x73, 0x74, 0x3d, 0xff, 0xfe]), {}, 400, 'E18007'],
      [Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' }, 400, 'E18125'],
      [gzipSync('host=a').subarray(0, 12), { 'content-encoding': 'gzip' }, 400, 'E18125'],
      [`host=${'y'.repeat(300 * 1024)}`, {}, 413, 'E18005'],
      [gzipSync(Buffer.alloc(10 * 1024 * 1024, 'a')), { 'content-encoding': 'gzip' }, 413, 'E18005'],
    ];
    for (const [body, headers, status, code] of cases) {
      const res = await push(s, repo, body, headers);
      assert.equal(res.statusCode, status, `${String(body).slice(0, 40)}: ${res.body.slice(0, 200)}`);
      assert.equal(errorCode(res), code, String(body).slice(0, 40));
    }
    assert.deepEqual(await sample(repo), []);
    assert.equal(errorCode(await push(s, 'no_such_repo', 'host=a')), 'E18102');
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=11` })), 'E18007');
  });

  it('applies ?tags= fields to every point, the point\'s own value winning', async () => {
    const repo = await makeRepo(s);
    const tags = Buffer.from('region=tagged\tlatency=7').toString('base64url');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/data?tags=${tags}`, body: 'host=c\nhost=d\tlatency=1', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.statusCode, 200, res.body);
    const rows = await sample(repo);
    assert.deepEqual(rows, [{ host: 'c', region: 'tagged', latency: 7 }, { host: 'd', latency: 1, region: 'tagged' }]);
    const bad = await s.call({ method: 'POST', url: `/v2/repos/${repo}/data?tags=%%%`, body: 'host=x', headers: { 'content-type': 'text/plain' } });
    assert.equal(errorCode(bad), 'E18138');
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/data?tags=`, body: 'host=x', headers: { 'content-type': 'text/plain' } })).statusCode, 200);
  });

  it('refuses pushing into a repo that a transform writes with E18223', async () => {
    const name = fresh('derived');
    s.ctx.repos.create('alice', name, { region: 'nb', schema: [{ key: 'n', valtype: 'long' }] }, { derivedFrom: 'some_transform' });
    const res = await push(s, name, 'n=1');
    assert.equal(res.statusCode, 400);
    assert.equal(errorCode(res), 'E18223');
  });

  it('never answers 5xx to arbitrary bodies, encodings and tags', async () => {
    const repo = await makeRepo(s);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)), fc.string({ maxLength: 500 }).map((t) => Buffer.from(t)), fc.constant(randomBytes(64))),
        fc.constantFrom('', 'gzip', 'br'),
        fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
        async (body, enc, tags) => {
          const url = `/v2/repos/${repo}/data${tags === undefined ? '' : `?tags=${encodeURIComponent(tags)}`}`;
          const headers: Record<string, string> = { 'content-type': 'text/plain' };
          if (enc) headers['content-encoding'] = enc;
          const res = await s.call({ method: 'POST', url, body, headers });
          assert.ok(res.statusCode < 500, `${res.statusCode} ${res.body}`);
          if (res.statusCode !== 200) errorCode(res);
        },
      ),
      { numRuns: 150 },
    );
  });
});
