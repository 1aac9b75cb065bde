/**
 * The OpenAPI document (npm run openapi -> docs/openapi.json) lists every
 * /v2 and /v5 route the server registers with its method, carries the route
 * schemas, and the schemas answer with each route's own E-code.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openApiDocument, openApiPath } from '../src/api/openapi.ts';
import { routeCatalog } from '../src/api/schema.ts';
import { errorCode, fresh, makeRepo, type TestServer } from './helpers.ts';
import { logdbCode } from './logdb-helpers.ts';
import { startOffline } from './offline-helpers.ts';

describe('OpenAPI document', () => {
  let s: TestServer;
  before(async () => { s = await startOffline(); });
  after(async () => { await s.close(); });

  const apiRoutes = () => routeCatalog(s.app).filter((r) => /^\/v[25]\//.test(r.url) || r.url === '/v2' || r.url === '/v5');

  it('lists every registered /v2 and /v5 route with its method, in the generated and the committed document', () => {
    const routes = apiRoutes();
    // The catalog is collected by onRoute: it sees the families registered by every plugin.
    for (const key of ['POST /v2/repos/:repo/data', 'GET /v2/repos', 'POST /v2/repos/:repo/exports/:name/preview', 'GET /v5/repos/:repo/search', 'POST /v2/batch/actions/rerun', 'GET /v2/jobs/:name/history']) {
      assert.ok(routes.some((r) => `${r.method} ${r.url}` === key), `${key} is not in the catalog`);
    }
    const generated = openApiDocument(routeCatalog(s.app), '0') as { paths: Record<string, Record<string, unknown>> };
    const committed = JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'docs', 'openapi.json'), 'utf8')) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.equal(committed.openapi, '3.0.3');
    for (const doc of [generated, committed]) {
      for (const r of routes) {
        if (r.method === 'HEAD' || r.method === 'OPTIONS') continue;
        assert.ok(doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()], `${r.method} ${r.url} missing (run npm run openapi)`);
      }
    }
    assert.deepEqual(Object.keys(committed.paths).sort(), Object.keys(generated.paths).sort(), 'docs/openapi.json is stale: run npm run openapi');
  });

  it('carries path, query and body schemas of the routes that declare them', () => {
    const doc = openApiDocument(routeCatalog(s.app), '0') as { paths: Record<string, Record<string, any>> };
    const create = doc.paths['/v2/repos/{repo}/exports/{name}']!.post;
    assert.deepEqual(create.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`), ['path:repo', 'path:name']);
    assert.equal(create.requestBody.content['application/json'].schema.properties.spec.type, 'object');
    assert.equal(create['x-validation-error'], 'E18305');
    const search = doc.paths['/v5/repos/{repo}/search']!.get;
    assert.ok(search.parameters.some((p: { name: string; in: string }) => p.in === 'query' && p.name === 'q'));
    assert.ok(doc.paths['/v2/jobs']!.get.parameters.some((p: { name: string }) => p.name === 'marker'));
  });

  it('answers schema failures with the route\'s own E-code and the documented error shape, storing nothing', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: [] } });
    assert.equal(errorCode(res), 'E18305');
    assert.match(JSON.parse(res.body).error, /body\.spec must be object/);
    assert.equal(JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${name}/exists` })).body).exist, false);
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/variables/${fresh('v')}`, body: { type: 'string', value: 5 } })), 'E18614');
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/batch/actions/stop', body: { jobName: 'j', runId: { a: 1 } } })), 'E18007');
    assert.equal(logdbCode(await s.call({ method: 'POST', url: `/v5/repos/${fresh('log').toLowerCase()}`, body: { region: 'nb', retention: '2d', schema: 'x' } })), 'E8108');
    // A body that is not JSON is still the route's own malformed-body answer.
    assert.equal(logdbCode(await s.call({ method: 'POST', url: `/v5/repos/${fresh('log').toLowerCase()}`, body: '{' })), 'E8116');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/jobs/${fresh('job')}`, body: '{' })), 'E18007');
  });
});
