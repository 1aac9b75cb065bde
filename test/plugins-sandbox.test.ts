/**
 * The Java plugin sandbox: with bubblewrap (CI installs the Debian package
 * `bubblewrap`), a jar cannot read the data dir or open a network
 * connection; with jvmSandbox=none the same jar can, which is what the
 * sandbox is for. Real JVMs, a real TCP listener on a free port.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PluginUnavailableError } from '../src/plugins/errors.ts';
import { JvmPluginRuntime, logJvmSandbox } from '../src/plugins/jvm-runtime.ts';
import { AK, AK2, fresh, makeRepo, push, SK, SK2, startServer, tmpDir, type TestServer } from './helpers.ts';
import { fixtureJar } from './java-jars.ts';

const ACCOUNTS = [{ id: 'alice', accessKey: AK, secretKey: SK, jarPlugins: true }, { id: 'bob', accessKey: AK2, secretKey: SK2 }];
const OUTPUT = [{ name: 'file' }, { name: 'dir' }, { name: 'net' }, { name: 'cwd' }];

const bwrapInstalled = (process.env.PATH ?? '').split(':').some((d) => existsSync(path.join(d, 'bwrap')));

describe('Java plugin sandbox', () => {
  let listener: Server;
  let port = 0;
  let connections = 0;
  const jarDir = tmpDir();
  let jar: Buffer;
  before(async () => {
    listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as { port: number }).port;
    jar = fixtureJar(jarDir, 'EscapeParser');
  });
  after(async () => {
    await new Promise((resolve) => listener.close(resolve));
  });

  /** Runs EscapeParser in a transform on a fresh server and returns what it saw. */
  async function escape(s: TestServer): Promise<Record<string, string>> {
    const up = await s.call({ method: 'POST', url: '/v2/plugins/com.example.EscapeParser', body: jar, headers: { 'content-type': 'application/java-archive' } });
    assert.equal(up.statusCode, 200, up.body);
    // bob's data: a repo with a pushed point, so his log directory exists.
    const bobs = await makeRepo(s, fresh('bob'), [{ key: 'secret', valtype: 'string' }]);
    await s.call({ method: 'POST', url: `/v2/repos/${bobs}/data`, body: 'secret=hunter2', headers: { 'content-type': 'text/plain' }, ak: AK2, sk: SK2 }).catch(() => {});
    const src = await makeRepo(s, fresh('src'), [{ key: 'path', valtype: 'string' }, { key: 'dir', valtype: 'string' }, { key: 'port', valtype: 'long' }]);
    const dest = fresh('seen');
    const t = await s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/t/to/${dest}`, body: { plugin: { name: 'com.example.EscapeParser', output: OUTPUT } } });
    assert.equal(t.statusCode, 200, t.body);
    const line = `path=${path.join(s.dir, 'meta.db')}\tdir=${path.join(s.dir, 'repos')}\tport=${port}`;
    assert.equal((await push(s, src, line)).statusCode, 200);
    await s.ctx.runner.runNow('alice', src, 't');
    const status = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/t` })).body).status;
    assert.equal(status.lastError, null);
    const rows = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dest}/data?count=1` })).body).records;
    assert.equal(rows.length, 1);
    return rows[0] as Record<string, string>;
  }

  it('keeps a jar away from the data dir and the network when bubblewrap is installed', async () => {
    const s = await startServer({ accounts: ACCOUNTS });
    try {
      const state = await s.ctx.plugins.jvm.sandbox();
      if (!bwrapInstalled) {
        // Without bubblewrap the fallback is taken and says why (CI installs it, so this branch is for other machines).
        assert.deepEqual(state, { mode: 'none', reason: 'bubblewrap (bwrap) is not installed' });
        return;
      }
      assert.deepEqual(state, { mode: 'bwrap' });
      const before = connections;
      const seen = await escape(s);
      assert.match(seen.file ?? '', /^denied:java\.io\.FileNotFoundException/);
      assert.equal(seen.dir, 'denied');
      assert.match(seen.net ?? '', /^denied:java\.net\.(ConnectException|SocketException|NoRouteToHostException)/);
      assert.equal(seen.cwd, '/tmp');
      assert.equal(connections, before, 'the listener saw a connection from the sandbox');
    } finally {
      await s.close();
    }
  });

  it('without the sandbox (jvmSandbox=none) the same jar reads meta.db and connects, in its own working directory', async () => {
    const s = await startServer({ accounts: ACCOUNTS, jvmSandbox: 'none' });
    try {
      assert.deepEqual(await s.ctx.plugins.jvm.sandbox(), { mode: 'none', reason: 'disabled by jvmSandbox=none' });
      const before = connections;
      const seen = await escape(s);
      assert.equal(seen.file, 'read:SQLite format 3');
      assert.match(seen.dir ?? '', /^listed:/);
      assert.equal(seen.net, 'connected');
      assert.equal(seen.cwd, path.join(s.dir, 'tmp', 'jvm', 'cwd'));
      assert.equal(connections, before + 1);
    } finally {
      await s.close();
    }
  });

  it('falls back with a logged reason when bwrap is missing, or refuses Java plugins with jvmSandbox=bwrap', async () => {
    const which = (cmd: string) => (process.env.PATH ?? '').split(':').map((d) => path.join(d, cmd)).find((p) => existsSync(p)) ?? cmd;
    const java = which('java');
    const javac = which('javac');
    const jarFile = path.join(jarDir, 'EscapeParser', 'x.jar');
    const { writeFileSync, mkdirSync } = await import('node:fs');
    mkdirSync(path.dirname(jarFile), { recursive: true });
    writeFileSync(jarFile, jar);
    const savedPath = process.env.PATH;
    process.env.PATH = '/nonexistent'; // no bwrap (nor anything else) to be found
    try {
      const strict = new JvmPluginRuntime({ timeoutMs: 30_000, memoryMb: 64, java, javac, workDir: path.join(jarDir, 'strict'), sandbox: 'bwrap' });
      await assert.rejects(strict.verify(jarFile, 'com.example.EscapeParser'), (err: Error) => {
        assert.ok(err instanceof PluginUnavailableError);
        assert.match(err.message, /jvmSandbox=bwrap but bubblewrap \(bwrap\) is not installed/);
        return true;
      });
      await strict.close();

      const auto = new JvmPluginRuntime({ timeoutMs: 30_000, memoryMb: 64, java, javac, workDir: path.join(jarDir, 'auto'), sandbox: 'auto' });
      const lines: Array<{ level: string; obj: object; msg: string }> = [];
      logJvmSandbox(auto, { info: (obj, msg) => lines.push({ level: 'info', obj, msg }), warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }) });
      assert.equal((await auto.verify(jarFile, 'com.example.EscapeParser')).form, 'map'); // runs unconfined
      assert.deepEqual(lines, [{ level: 'warn', obj: { sandbox: 'none', reason: 'bubblewrap (bwrap) is not installed' }, msg: "Java plugins run WITHOUT a sandbox, with the server's OS rights" }]);
      await auto.close();
    } finally {
      process.env.PATH = savedPath;
    }
  });
});
