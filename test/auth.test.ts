import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AK, AK2, SK, SK2, fresh, makeRepo, signRequest, startServer, type TestServer } from './helpers.ts';

const b64url = (b: Buffer): string => b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');

function token(sk: string, ak: string, desc: Record<string, unknown>): string {
  const d = b64url(Buffer.from(JSON.stringify(desc)));
  return `Pandora ${ak}:${b64url(createHmac('sha1', sk).update(d).digest())}:${d}`;
}

describe('authentication', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  it('accepts a request signed with the secret key and answers with an X-Reqid header', async () => {
    const res = await s.call({ method: 'GET', url: '/v2/repos' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['x-reqid']), /^[0-9a-f]{16}$/);
    assert.equal(res.headers['content-type'], 'application/json');
  });

  it('rejects a request without Authorization with 401 and a JSON error longer than a code', async () => {
    const res = await s.call({ method: 'GET', url: '/v2/repos', anonymous: true });
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.ok(res.headers['x-reqid']);
    const body = JSON.parse(res.body) as { error: string };
    assert.ok(body.error.length > 12, body.error);
  });

  it('rejects a wrong signature, an unknown access key and a malformed header', async () => {
    for (const authorization of [`Pandora ${AK}:${'A'.repeat(28)}`, `Pandora nobody-here:${'A'.repeat(28)}`, 'Bearer abc', `Pandora ${AK}`]) {
      const res = await s.call({ method: 'GET', url: '/v2/repos', headers: { authorization } });
      assert.equal(res.statusCode, 401, authorization);
    }
  });

  it('rejects a signature made with another account\'s secret key', async () => {
    const res = await s.call({ method: 'GET', url: '/v2/repos', ak: AK, sk: SK2 });
    assert.equal(res.statusCode, 401);
  });

  it('covers X-Qiniu-* headers, Content-MD5 and Content-Type in the signature', async () => {
    const headers = { 'X-Qiniu-B': 'two', 'x-qiniu-a': 'one', 'content-md5': 'gLL29S04bTCxYd2kCqsEIQ==', date: new Date().toUTCString() };
    const ok = await s.call({ method: 'GET', url: '/v2/groups', headers });
    assert.equal(ok.statusCode, 200);
    // Same signature, one signed header changed after signing: refused.
    const sig = signRequest(SK, 'GET', '/v2/groups', headers);
    const changes: Array<Record<string, string>> = [{ 'x-qiniu-a': 'other' }, { 'content-md5': 'xxxx' }, { 'x-qiniu-c': 'new' }];
    for (const changed of changes) {
      const res = await s.call({ method: 'GET', url: '/v2/groups', headers: { ...headers, ...changed, authorization: `Pandora ${AK}:${sig}` } });
      assert.equal(res.statusCode, 401, JSON.stringify(changed));
    }
  });

  it('ignores the query string when signing', async () => {
    const headers = { date: new Date().toUTCString() };
    const sig = signRequest(SK, 'GET', '/v2/repos', headers);
    const res = await s.call({ method: 'GET', url: '/v2/repos?withDag=true', headers: { ...headers, authorization: `Pandora ${AK}:${sig}` } });
    assert.equal(res.statusCode, 200);
  });

  it('rejects a Date outside the allowed clock skew and accepts one inside it', async () => {
    const old = new Date(Date.now() - 16 * 60_000).toUTCString();
    assert.equal((await s.call({ method: 'GET', url: '/v2/repos', headers: { date: old } })).statusCode, 401);
    const future = new Date(Date.now() + 16 * 60_000).toUTCString();
    assert.equal((await s.call({ method: 'GET', url: '/v2/repos', headers: { date: future } })).statusCode, 401);
    const near = new Date(Date.now() - 5 * 60_000).toUTCString();
    assert.equal((await s.call({ method: 'GET', url: '/v2/repos', headers: { date: near } })).statusCode, 200);
  });

  it('accepts a token for its method and path until it expires, and nothing else', async () => {
    const repo = await makeRepo(s);
    const exp = Math.floor(Date.now() / 1000) + 60;
    const good = token(SK, AK, { resource: `/v2/repos/${repo}`, expires: exp, contentMD5: '', contentType: '', headers: '', method: 'GET' });
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${repo}`, headers: { authorization: good } })).statusCode, 200);
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${repo}`, headers: { authorization: good } })).statusCode, 401);
    assert.equal((await s.call({ method: 'GET', url: '/v2/repos', headers: { authorization: good } })).statusCode, 401);
    const expired = token(SK, AK, { resource: `/v2/repos/${repo}`, expires: exp - 120, method: 'GET' });
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${repo}`, headers: { authorization: expired } })).statusCode, 401);
    const forged = token(SK2, AK, { resource: `/v2/repos/${repo}`, expires: exp, method: 'GET' });
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${repo}`, headers: { authorization: forged } })).statusCode, 401);
  });

  it('answers 403 to requests acting for another account', async () => {
    const delegations: Array<Record<string, string>> = [{ 'X-Resource-Owner': '12345' }, { 'X-AppId': 'app' }];
    for (const h of delegations) {
      const res = await s.call({ method: 'GET', url: '/v2/repos', headers: h });
      assert.equal(res.statusCode, 403);
    }
  });

  it('keeps accounts apart: one account cannot see or touch another\'s repos', async () => {
    const repo = fresh('private');
    await makeRepo(s, repo);
    const asBob = { ak: AK2, sk: SK2 };
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${repo}`, ...asBob })).statusCode, 404);
    const list = JSON.parse((await s.call({ method: 'GET', url: '/v2/repos', ...asBob })).body) as { repos: Array<{ name: string }> };
    assert.ok(!list.repos.some((r) => r.name === repo));
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/data`, body: 'host=a', headers: { 'content-type': 'text/plain' }, ...asBob })).statusCode, 404);
    // Bob may own a repo with the same name, independently.
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}`, body: { region: 'nb', schema: [{ key: 'x', valtype: 'long' }] }, ...asBob })).statusCode, 200);
    const mine = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}` })).body) as { schema: Array<{ key: string }> };
    assert.equal(mine.schema[0]?.key, 'host');
  });

  it('serves /health without authentication', async () => {
    const res = await s.call({ method: 'GET', url: '/health', anonymous: true });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(JSON.parse(res.body), { status: 'ok' });
  });
});
