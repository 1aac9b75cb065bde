/**
 * Plugin uploads as the official SDK makes them: any body is stored (its own
 * test uploads "plugin content"), Content-MD5 and the size limit are checked,
 * and the package is checked against its contract when used: by a transform
 * and by POST /v2/verify/plugins/<name>.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { AK, AK2, errorCode, fresh, makeRepo, push, SK, SK2, startServer, tmpDir, type TestServer } from './helpers.ts';
import { fixtureJar } from './java-jars.ts';

const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('base64');

function uploader(s: TestServer) {
  return (name: string, body: Buffer | string, headers: Record<string, string> = {}) =>
    s.call({ method: 'POST', url: `/v2/plugins/${name}`, body, headers: { 'content-type': 'application/java-archive', ...headers } });
}

describe('plugin uploads', () => {
  const servers: TestServer[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const s of servers) await s.close().catch(() => {});
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const start = async (overrides: Record<string, unknown> = {}, dir?: string) => {
    const s = await startServer(overrides, dir);
    servers.push(s);
    return s;
  };

  it('stores arbitrary bytes with the SDK calls (upload with Content-MD5, get, list, delete) and refuses them when used', async () => {
    const s = await start();
    const up = uploader(s);
    const body = 'plugin content';
    const res = await up('plugin', body, { 'content-md5': md5(body) });
    assert.equal(res.statusCode, 200, res.body);
    const got = JSON.parse((await s.call({ method: 'GET', url: '/v2/plugins/plugin' })).body);
    assert.equal(got.name, 'plugin');
    assert.equal(got.size, body.length);
    assert.equal(typeof got.createTime, 'string');
    assert.deepEqual(JSON.parse((await s.call({ method: 'GET', url: '/v2/plugins' })).body).plugins.map((p: { name: string }) => p.name), ['plugin']);

    const v = await s.call({ method: 'POST', url: '/v2/verify/plugins/plugin' });
    assert.equal(errorCode(v), 'E18617');
    assert.match(v.body, /plugin plugin: not a jar, and not a JavaScript module that loads/);
    const src = await makeRepo(s);
    const dest = fresh('d');
    const t = await s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/t/to/${dest}`, body: { plugin: { name: 'plugin', output: [{ name: 'host' }] } } });
    assert.equal(errorCode(t), 'E18617');
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/repos/${dest}` })), 'E18102'); // nothing created

    assert.equal((await s.call({ method: 'DELETE', url: '/v2/plugins/plugin' })).statusCode, 200);
    const again = 'local file plugin content';
    assert.equal((await up('plugin', again, { 'content-md5': md5(again) })).statusCode, 200);
  });

  it('checks Content-MD5, empty bodies and names on upload, storing nothing refused', async () => {
    const s = await start();
    const up = uploader(s);
    assert.equal(errorCode(await up('com.x.P', 'abc', { 'content-md5': md5('abd') })), 'E18220');
    assert.equal(errorCode(await up('com.x.P', '')), 'E18006');
    assert.equal(errorCode(await up('1bad', 'abc')), 'E18117');
    assert.equal(errorCode(await s.call({ method: 'GET', url: '/v2/plugins/com.x.P' })), 'E18216');
    assert.equal((await up('com.x.P', 'abc')).statusCode, 200);
    assert.equal(errorCode(await up('com.x.P', 'abc')), 'E18217');
  });

  it('takes packages up to pluginMaxSize even past maxBodySize, and refuses larger ones with E18005', async () => {
    const s = await start({ pluginMaxSize: '64KB', maxBodySize: '16KB' });
    const up = uploader(s);
    const ok = Buffer.alloc(40 * 1024, 7);
    const res = await up('com.x.Big', ok, { 'content-md5': md5(ok) });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(JSON.parse((await s.call({ method: 'GET', url: '/v2/plugins/com.x.Big' })).body).size, ok.length);
    const big = await up('com.x.Bigger', Buffer.alloc(64 * 1024 + 1, 7));
    assert.equal(big.statusCode, 413);
    assert.equal(errorCode(big), 'E18005');
    assert.equal(errorCode(await s.call({ method: 'GET', url: '/v2/plugins/com.x.Bigger' })), 'E18216');
    // Other requests keep the global limit.
    const repo = await s.call({ method: 'POST', url: `/v2/repos/${fresh('r')}`, body: { region: 'nb', schema: [{ key: 'a', valtype: 'string' }], description: 'x'.repeat(20 * 1024) } });
    assert.equal(errorCode(repo), 'E18005');
  });

  it('accepts a 20 MB plugin with the default limits (official limit 100 MB, maxBodySize 16 MB)', async () => {
    const s = await start();
    const body = Buffer.alloc(20 * 1024 * 1024, 1);
    const res = await uploader(s)('com.x.Large', body, { 'content-md5': md5(body) });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(s.config.pluginMaxBytes, 100 * 1024 * 1024);
  });

  it('verifies a JavaScript plugin: outputFields echo a declared output, and a broken module is named', async () => {
    const s = await start();
    const up = uploader(s);
    assert.equal((await up('com.x.Upper', 'export default (p) => ({ host: p.host.toUpperCase() });')).statusCode, 200);
    const v = await s.call({ method: 'POST', url: '/v2/verify/plugins/com.x.Upper', body: { output: [{ name: 'host' }, { name: 'n', type: 'long' }] } });
    assert.equal(v.statusCode, 200, v.body);
    assert.deepEqual(JSON.parse(v.body).outputFields, [{ name: 'host', type: 'string' }, { name: 'n', type: 'long' }]);
    assert.deepEqual(JSON.parse((await s.call({ method: 'POST', url: '/v2/verify/plugins/com.x.Upper' })).body).outputFields, []);
    const bad = await s.call({ method: 'POST', url: '/v2/verify/plugins/com.x.Upper', body: { output: [{ name: 'n', type: 'date' }] } });
    assert.equal(errorCode(bad), 'E18211');
    assert.equal((await up('com.x.Broken', 'export const nothing = 1;')).statusCode, 200);
    const broken = await s.call({ method: 'POST', url: '/v2/verify/plugins/com.x.Broken' });
    assert.equal(errorCode(broken), 'E18617');
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/verify/plugins/com.x.Missing' })), 'E18216');
  });

  it('stops running a jar plugin when the grant is withdrawn, and grants the env account only with jarPlugins=true', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const granted = [{ id: 'alice', accessKey: AK, secretKey: SK, jarPlugins: true }, { id: 'bob', accessKey: AK2, secretKey: SK2 }];
    const s1 = await startServer({ accounts: granted }, dir);
    const jar = fixtureJar(dir, 'UpperParser');
    assert.equal((await uploader(s1)('com.example.UpperParser', jar)).statusCode, 200);
    const src = await makeRepo(s1, fresh('m'), [{ key: 'msg', valtype: 'string' }, { key: 'n', valtype: 'long' }]);
    const created = await s1.call({ method: 'POST', url: `/v2/repos/${src}/transforms/t/to/${fresh('d')}`, body: { plugin: { name: 'com.example.UpperParser', output: [{ name: 'msg' }] } } });
    assert.equal(created.statusCode, 200, created.body);
    await s1.app.close(); // keep the data dir

    const s2 = await start({ accounts: granted.map((a) => ({ ...a, jarPlugins: false })) }, dir);
    assert.equal((await push(s2, src, 'msg=a\tn=1')).statusCode, 200);
    await s2.ctx.runner.runNow('alice', src, 't');
    const status = JSON.parse((await s2.call({ method: 'GET', url: `/v2/repos/${src}/transforms/t` })).body).status;
    assert.match(String(status.lastError), /not enabled for this account/);
    assert.equal(errorCode(await s2.call({ method: 'POST', url: '/v2/verify/plugins/com.example.UpperParser' })), 'E18665');

    const env = (v?: string) => ({ PIPELINE_ACCESS_KEY: 'env-access-key', PIPELINE_SECRET_KEY: 'env-secret-key-0123456789', ...(v ? { PIPELINE_JAR_PLUGINS: v } : {}) });
    const { loadConfig } = await import('../src/config.ts');
    assert.equal(loadConfig(env()).accounts[0]?.jarPlugins, false);
    assert.equal(loadConfig(env('true')).accounts[0]?.jarPlugins, true);
    assert.throws(() => loadConfig(env('yes')), /jarPlugins: "yes" must be true or false/);
  });
});
