/**
 * The lists added with exports, the log store and offline jobs are bounded:
 * at most `limit` (default and cap 1,000) entries per answer, with `marker`
 * when more remain; without paging parameters the answer keeps the shape
 * the official SDK reads.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, type TestServer } from './helpers.ts';
import { startOffline } from './offline-helpers.ts';

describe('bounded lists of exports, log repos, variables and jobs', () => {
  let s: TestServer;
  before(async () => { s = await startOffline(); });
  after(async () => { await s.close(); });

  async function get(url: string): Promise<Record<string, any>> {
    const res = await s.call({ method: 'GET', url });
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    return JSON.parse(res.body);
  }
  /** Follows markers with `limit` entries a page; returns the names seen and the page count. */
  async function walk(url: string, key: string, limit: number): Promise<{ names: string[]; pages: number }> {
    const names: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const sep = url.includes('?') ? '&' : '?';
      const body = await get(`${url}${sep}limit=${limit}${marker ? `&marker=${marker}` : ''}`);
      pages++;
      names.push(...(body[key] as Array<{ name: string }>).map((e) => e.name));
      marker = body.marker;
    } while (marker && pages < 50);
    return { names, pages };
  }

  it('pages the exports of a repo by name and answers them all without parameters', async () => {
    const repo = await makeRepo(s);
    const names = ['ex_c', 'ex_a', 'ex_b'];
    for (const n of names) {
      const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${n}`, body: { type: 'http', spec: { host: 'http://127.0.0.1:9', uri: '/x' } } });
      assert.equal(res.statusCode, 200, res.body);
    }
    assert.deepEqual(await walk(`/v2/repos/${repo}/exports`, 'exports', 2), { names: ['ex_a', 'ex_b', 'ex_c'], pages: 2 });
    const all = await get(`/v2/repos/${repo}/exports`);
    assert.equal(all.marker, undefined);
    assert.deepEqual(all.exports.map((e: { name: string }) => e.name), ['ex_a', 'ex_b', 'ex_c']);
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports?limit=1001` })), 'E18010');
  });

  it('pages v5 log repos in code unit order of names (an underscore after digits)', async () => {
    const id = fresh('lg').toLowerCase();
    const names = [`${id}_x`, `${id}1`, `${id}0`];
    for (const n of names) {
      const res = await s.call({ method: 'POST', url: `/v5/repos/${n}`, body: { region: 'nb', retention: '2d', schema: [{ key: 'm', valtype: 'string' }] } });
      assert.equal(res.statusCode, 200, res.body);
    }
    const seen = await walk('/v5/repos', 'repos', 1);
    assert.deepEqual(seen, { names: [`${id}0`, `${id}1`, `${id}_x`], pages: 3 });
  });

  it('lists the system variables first and pages the user variables by name', async () => {
    for (const n of ['v_b', 'v_a', 'v_c']) {
      assert.equal((await s.call({ method: 'POST', url: `/v2/variables/${n}`, body: { type: 'string', value: n } })).statusCode, 200);
    }
    const first = await get('/v2/variables?limit=2');
    assert.deepEqual(first.variables.map((v: { name: string }) => v.name), ['year', 'mon', 'day', 'hour', 'min', 'sec', 'date', 'now', 'v_a', 'v_b']);
    assert.equal(first.marker, 'v_b');
    const second = await get('/v2/variables?limit=2&marker=v_b');
    assert.deepEqual(second.variables.map((v: { name: string }) => v.name), ['v_c']);
    assert.equal(second.marker, undefined);
    assert.deepEqual((await walk('/v2/variables?type=user', 'variables', 1)).names, ['v_a', 'v_b', 'v_c']);
  });

  it('caps the size of a jobs page at 1,000 and refuses malformed paging with E18007 and E18010', async () => {
    assert.deepEqual(await get('/v2/jobs?size=1000'), { jobs: [], total: 0 });
    assert.equal(errorCode(await s.call({ method: 'GET', url: '/v2/jobs?size=1001' })), 'E18007');
    assert.equal(errorCode(await s.call({ method: 'GET', url: '/v2/jobs?limit=0' })), 'E18010');
    assert.equal(errorCode(await s.call({ method: 'GET', url: '/v2/datasources?limit=x' })), 'E18010');
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/datasources?marker=${'m'.repeat(300)}` })), 'E18010');
    assert.deepEqual(await get('/v2/datasources?limit=5'), { datasources: [] });
  });
});
