/** Java plugins end to end: a jar built here from Java source, uploaded and run by a transform. Needs a JDK (CI installs one). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, push, startServer, tmpDir, type TestServer } from './helpers.ts';

function buildJar(dir: string): Buffer {
  const src = new URL('./fixtures/plugins/java/com/example/UpperParser.java', import.meta.url).pathname;
  const classes = path.join(dir, 'classes');
  execFileSync('javac', ['-encoding', 'UTF-8', '-d', classes, src]);
  const jar = path.join(dir, 'upper.jar');
  execFileSync('jar', ['cf', jar, '-C', classes, '.']);
  return readFileSync(jar);
}

describe('Java plugins through the API', () => {
  let s: TestServer;
  const dir = tmpDir();
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); rmSync(dir, { recursive: true, force: true }); });

  it('uploads a jar named by its class and runs it in a transform before SQL', async () => {
    const jar = buildJar(dir);
    const md5 = createHash('md5').update(jar).digest('base64');
    const up = await s.call({ method: 'POST', url: '/v2/plugins/com.example.UpperParser', body: jar, headers: { 'content-type': 'application/java-archive', 'content-md5': md5 } });
    assert.equal(up.statusCode, 200, up.body);
    assert.equal(JSON.parse((await s.call({ method: 'GET', url: '/v2/plugins/com.example.UpperParser' })).body).kind, 'java');
    // A jar whose class does not match the plugin name is refused at upload.
    const wrong = await s.call({ method: 'POST', url: '/v2/plugins/com.example.Other', body: jar, headers: { 'content-type': 'application/java-archive' } });
    assert.equal(errorCode(wrong), 'E18617');

    const src = await makeRepo(s, fresh('msgs'), [{ key: 'msg', valtype: 'string' }, { key: 'n', valtype: 'long' }]);
    const dest = fresh('upper');
    const res = await s.call({
      method: 'POST', url: `/v2/repos/${src}/transforms/up/to/${dest}`,
      body: { plugin: { name: 'com.example.UpperParser', output: [{ name: 'msg' }, { name: 'copy', type: 'long' }, { name: 'n2', type: 'long' }] }, mode: 'sql', code: `select msg, copy, n2 from ${src} order by copy`, interval: '5s' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await push(s, src, 'msg=hello\tn=21')).statusCode, 200);
    await s.ctx.runner.runNow('alice', src, 'up');
    const t = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/up` })).body);
    assert.equal(t.status.lastError, null);
    const rows = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dest}/data?count=10` })).body).records;
    assert.deepEqual(rows, [{ msg: 'HELLO', copy: 1, n2: 42 }, { msg: 'HELLO', copy: 2, n2: 42 }]);
  });
});
