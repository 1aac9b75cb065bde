import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import {
  JsPluginRuntime,
  PluginInvalidError,
  PluginMemoryError,
  PluginRunError,
  PluginTimeoutError,
  PluginUnavailableError,
  type OutputField,
} from '../src/plugins/js-runtime.ts';
import { JvmPluginRuntime } from '../src/plugins/jvm-runtime.ts';

const TIMEOUT_MS = 2_000;
const out = (spec: Record<string, OutputField['type']>): OutputField[] => Object.entries(spec).map(([name, type]) => ({ name, type }));

describe('JavaScript plugin runtime', () => {
  const rt = new JsPluginRuntime({ workers: 2, timeoutMs: TIMEOUT_MS, memoryMb: 64 });
  let n = 0;
  const run = (code: string, points: Record<string, unknown>[], output: OutputField[]) => rt.run(`test.p${n++}`, code, points, output);
  after(() => rt.close());

  test('a default export maps each point to one output point', async () => {
    const res = await run('export default p => ({ ...p, x: 1 })', [{ a: 'one' }, { a: 'two' }], out({ a: 'string', x: 'long' }));
    assert.deepEqual(res, [{ a: 'one', x: 1 }, { a: 'two', x: 1 }]);
  });

  test('returning an array emits several points and null or undefined drops the point', async () => {
    const code = 'export default (p) => p.n === 0 ? null : p.n === 1 ? undefined : [{ n: p.n }, { n: p.n * 10 }]';
    const res = await run(code, [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }], out({ n: 'long' }));
    assert.deepEqual(res, [{ n: 2 }, { n: 20 }, { n: 3 }, { n: 30 }]);
  });

  test('the batch form receives all points at once and wins over a default export', async () => {
    const code = 'export default () => ({ which: "default" });\nexport function batch(points) { return [{ which: "batch", count: points.length }]; }';
    const points = Array.from({ length: 25_000 }, (_, i) => ({ i }));
    const res = await run(code, points, out({ which: 'string', count: 'long' }));
    assert.deepEqual(res, [{ which: 'batch', count: 25_000 }]);
  });

  test('async default and batch exports are awaited', async () => {
    const map = await run('export default async (p) => { await null; return { v: p.v + 1 }; }', [{ v: 1 }, { v: 2 }], out({ v: 'long' }));
    assert.deepEqual(map, [{ v: 2 }, { v: 3 }]);
    const batch = await run('export async function batch(ps) { await Promise.resolve(); return ps.map((p) => ({ v: -p.v })); }', [{ v: 1 }], out({ v: 'long' }));
    assert.deepEqual(batch, [{ v: -1 }]);
  });

  test('a large batch is split across workers and comes back complete and in order', async () => {
    const points = Array.from({ length: 45_001 }, (_, i) => ({ i }));
    const res = await run('export default (p) => ({ i: p.i, sq: p.i * p.i })', points, out({ i: 'long', sq: 'long' }));
    assert.equal(res.length, points.length);
    assert.ok(res.every((p, i) => p.i === i && p.sq === i * i));
  });

  test('output enforcement keeps declared fields only and coerces values to their types', async () => {
    const code = `export default () => ({
      l1: 7, l2: ' -42 ', l3: '12345678901234567890', f1: 1.5, f2: '2.5e3', f3: 3,
      s1: 12, s2: true, s3: { k: [1, 2] }, s4: 'text', gone: null, extra: 'dropped' })`;
    const [p] = await run(code, [{}], out({ l1: 'long', l2: 'long', l3: 'long', f1: 'float', f2: 'float', f3: 'float', s1: 'string', s2: 'string', s3: 'string', s4: 'string', gone: 'string', absent: 'long' }));
    assert.deepEqual(p, { l1: 7, l2: -42, l3: 12345678901234567890n, f1: 1.5, f2: 2500, f3: 3, s1: '12', s2: 'true', s3: '{"k":[1,2]}', s4: 'text' });
  });

  test('a value that does not fit its declared type fails the run naming the field', async () => {
    for (const [value, type] of [['"abc"', 'long'], ['1.5', 'long'], ['"1,5"', 'float'], ['true', 'float']] as const) {
      await assert.rejects(run(`export default () => ({ bad: ${value} })`, [{}], out({ bad: type })), (err: Error) => {
        assert.ok(err instanceof PluginRunError, String(err));
        assert.match(err.message, /"bad"/);
        return true;
      });
    }
  });

  test('output that is not points fails the run', async () => {
    await assert.rejects(run('export default () => 42', [{}], out({ a: 'string' })), PluginRunError);
    await assert.rejects(run('export function batch() { return { not: "an array" }; }', [{}], out({ a: 'string' })), /array/);
  });

  test('longs beyond 2^53 reach the plugin as bigint and come back exactly', async () => {
    const res = await run('export default (p) => ({ t: typeof p.big, big: p.big + 1n })', [{ big: 2n ** 60n }], out({ t: 'string', big: 'long' }));
    assert.deepEqual(res, [{ t: 'bigint', big: 2n ** 60n + 1n }]);
  });

  test('a plugin that throws fails the run with its message', async () => {
    await assert.rejects(run('export default (p) => { throw new TypeError("bad point " + p.id); }', [{ id: 9 }], out({})), (err: Error) => {
      assert.ok(err instanceof PluginRunError && !(err instanceof PluginTimeoutError));
      assert.match(err.message, /TypeError: bad point 9/);
      return true;
    });
  });

  test('an infinite loop times out and the runtime keeps working afterwards', async () => {
    const started = Date.now();
    await assert.rejects(run('export default () => { for (;;) {} }', [{}], out({})), PluginTimeoutError);
    assert.ok(Date.now() - started < TIMEOUT_MS * 3);
    await assert.rejects(run('export default async () => { for (;;) await null; }', [{}], out({})), PluginTimeoutError);
    assert.deepEqual(await run('export default (p) => p', [{ ok: 'yes' }], out({ ok: 'string' })), [{ ok: 'yes' }]);
  });

  test('a memory hog is stopped and the runtime keeps working afterwards', async () => {
    const hog = 'export default () => { const a = []; for (;;) a.push(new Array(100000).fill(Math.random())); }';
    await assert.rejects(run(hog, [{}], out({})), (err: Error) => {
      assert.ok(err instanceof PluginMemoryError || err instanceof PluginRunError, String(err));
      return true;
    });
    assert.deepEqual(await run('export default (p) => p', [{ ok: 'yes' }], out({ ok: 'string' })), [{ ok: 'yes' }]);
  });

  test('one huge allocation that aborts V8 takes down only its own worker', async () => {
    // In a worker thread this aborts the whole process (nodejs/node#47224); a child process contains it.
    // Its own runtime with a long timeout: on a loaded machine the fill can take longer than TIMEOUT_MS before V8 aborts.
    const own = new JsPluginRuntime({ workers: 1, timeoutMs: 60_000, memoryMb: 64 });
    try {
      await assert.rejects(own.run('big', 'export default () => { new Array(2 ** 31 - 1).fill(1); }', [{}], out({})), PluginMemoryError);
      assert.deepEqual(await own.run('ok', 'export default (p) => p', [{ ok: 'still' }], out({ ok: 'string' })), [{ ok: 'still' }]);
    } finally {
      await own.close();
    }
  });

  test('host capabilities are out of reach from plugin code', async () => {
    const code = `
      const probe = (f) => { try { const v = f(); return v === undefined ? 'undefined' : 'REACHED ' + String(v).slice(0, 40); } catch (e) { return 'blocked'; } };
      export default async () => ({
        process: typeof process, require: typeof require, fetch: typeof fetch, buffer: typeof Buffer,
        setTimeout: typeof setTimeout, module: typeof module, arrayBuffer: typeof ArrayBuffer, uint8: typeof Uint8Array, importMeta: probe(() => import.meta.constructor),
        ctor: probe(() => globalThis.constructor.constructor('return process')()),
        fn: probe(() => (() => {}).constructor('return 1')()),
        eval: probe(() => eval('1')),
        wasm: probe(() => new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))),
        dynImport: await import('node:fs').then((m) => 'REACHED ' + typeof m.readFileSync, (e) => probe(() => e.constructor.constructor('return process')())),
      })`;
    const fields = ['process', 'require', 'fetch', 'buffer', 'setTimeout', 'module', 'arrayBuffer', 'uint8', 'importMeta', 'ctor', 'fn', 'eval', 'wasm', 'dynImport'];
    const [p] = await run(code, [{}], fields.map((name) => ({ name, type: 'string' })));
    assert.deepEqual(p, {
      process: 'undefined', require: 'undefined', fetch: 'undefined', buffer: 'undefined', setTimeout: 'undefined', module: 'undefined',
      arrayBuffer: 'undefined', uint8: 'undefined', importMeta: 'undefined', ctor: 'blocked', fn: 'blocked', eval: 'blocked', wasm: 'blocked', dynImport: 'blocked',
    });
  });

  test('a plugin cannot read /etc/passwd by any import', async () => {
    await assert.rejects(rt.verify("import fs from 'node:fs';\nexport default () => ({ s: fs.readFileSync('/etc/passwd', 'utf8') })"), (err: Error) => {
      assert.ok(err instanceof PluginInvalidError);
      assert.match(err.message, /cannot import/);
      return true;
    });
    const dyn = "export default async () => ({ s: (await import('fs')).readFileSync('/etc/passwd', 'utf8') })";
    await assert.rejects(run(dyn, [{}], out({ s: 'string' })), /cannot import modules/);
    const viaRequire = "export default () => ({ s: globalThis.process?.mainModule?.require?.('fs').readFileSync('/etc/passwd', 'utf8') })";
    assert.deepEqual(await run(viaRequire, [{}], out({ s: 'string' })), [{}]);
  });

  test('replacing Promise methods to catch host callbacks fails instead of escaping', async () => {
    const code = 'Promise.prototype.then = function (ok) { return ok.constructor("return process")(); };\nexport default (p) => p';
    await assert.rejects(run(code, [{}], out({})), PluginInvalidError);
  });

  test('verify accepts a usable module and rejects syntax errors, missing exports and failing top-level code', async () => {
    await rt.verify('export default function (point) { return point; }');
    await rt.verify('export async function batch(points) { return points; }');
    const bad: Array<[string, RegExp]> = [
      ['export default (p => ', /syntax error/],
      ['export const x = 1;', /default function .* batch/],
      ['export default 42;', /default function/],
      ['throw new Error("boom at load");\nexport default (p) => p', /boom at load/],
    ];
    for (const [code, message] of bad) {
      await assert.rejects(rt.verify(code), (err: Error) => {
        assert.ok(err instanceof PluginInvalidError, `${code}: ${String(err)}`);
        assert.match(err.message, message);
        return true;
      });
    }
  });

  test('thread isolation runs plugins and stops infinite loops as well', async () => {
    const threads = new JsPluginRuntime({ workers: 1, timeoutMs: 1_000, memoryMb: 32, isolation: 'thread' });
    try {
      assert.deepEqual(await threads.run('t', 'export default (p) => ({ v: p.v * 2 })', [{ v: 21 }], out({ v: 'long' })), [{ v: 42 }]);
      await assert.rejects(threads.run('spin', 'export default () => { for (;;) {} }', [{}], out({})), PluginTimeoutError);
      assert.deepEqual(await threads.run('t', 'export default (p) => ({ v: p.v * 2 })', [{ v: 1 }], out({ v: 'long' })), [{ v: 2 }]);
    } finally {
      await threads.close();
    }
  });

  test('close is idempotent and later runs fail', async () => {
    const own = new JsPluginRuntime({ workers: 1, timeoutMs: TIMEOUT_MS, memoryMb: 32 });
    assert.deepEqual(await own.run('c', 'export default (p) => p', [{ a: 'x' }], out({ a: 'string' })), [{ a: 'x' }]);
    await own.close();
    await own.close();
    await assert.rejects(own.run('c', 'export default (p) => p', [{ a: 'x' }], out({ a: 'string' })), PluginRunError);
  });
});

const hasJavac = (() => {
  try {
    execFileSync('javac', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('Java plugin runtime', () => {
  const rt = new JvmPluginRuntime({ timeoutMs: TIMEOUT_MS, memoryMb: 64 });
  after(() => rt.close());

  if (!hasJavac) {
    test('is unavailable without a JDK, so the Java plugin tests are skipped (javac is not on PATH)', async () => {
      assert.equal(await rt.available(), false);
      await assert.rejects(rt.verify('/nonexistent.jar', 'com.example.UpperParser'), PluginUnavailableError);
    });
    return;
  }

  let dir = '';
  let jar = '';
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'plugins-runtime-test-'));
    jar = buildJar(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('is available when java and javac are installed', async () => {
    assert.equal(await rt.available(), true);
  });

  test('a parser class maps each point to two upper-cased points with exact longs and enforced types', async () => {
    await rt.verify(jar, 'com.example.UpperParser');
    const res = await rt.run('t/upper', jar, 'com.example.UpperParser', [{ msg: 'hello', n: 2 }, { msg: 'wörld', n: 2n ** 60n }], out({ msg: 'string', copy: 'long', n2: 'long', big: 'long', ratio: 'float' }));
    assert.deepEqual(res, [
      { msg: 'HELLO', copy: 1, n2: 4, big: 9007199254740993n, ratio: 0.5 },
      { msg: 'HELLO', copy: 2, n2: 4, big: 9007199254740993n, ratio: 0.5 },
      { msg: 'WÖRLD', copy: 1, n2: 2n ** 61n, big: 9007199254740993n, ratio: 0.5 },
      { msg: 'WÖRLD', copy: 2, n2: 2n ** 61n, big: 9007199254740993n, ratio: 0.5 },
    ]);
  });

  test('a parseBatch method receives the whole batch', async () => {
    const points = Array.from({ length: 12_000 }, (_, i) => ({ msg: `m${i}` }));
    assert.deepEqual(await rt.run('t/count', jar, 'com.example.CountParser', points, out({ count: 'long', first: 'string' })), [{ count: 12_000, first: 'm0' }]);
  });

  test('a parser that throws fails the run with its exception', async () => {
    await assert.rejects(rt.run('t/throw', jar, 'com.example.ThrowingParser', [{ msg: 'x' }], out({})), (err: Error) => {
      assert.ok(err instanceof PluginRunError);
      assert.match(err.message, /IllegalStateException: cannot parse x/);
      return true;
    });
  });

  test('a missing class or a file that is not a jar is an invalid plugin', async () => {
    await assert.rejects(rt.verify(jar, 'com.example.Missing'), /com\.example\.Missing was not found/);
    await assert.rejects(rt.run('t/missing', jar, 'com.example.Missing', [{}], out({})), PluginInvalidError);
    const notJar = path.join(dir, 'not.jar');
    writeFileSync(notJar, 'export default (p) => p');
    await assert.rejects(rt.verify(notJar, 'com.example.UpperParser'), PluginInvalidError);
  });

  test('a zip of classes without a manifest works as a jar', async () => {
    const zip = path.join(dir, 'plain.zip.jar');
    writeFileSync(zip, storedZip(classFiles(path.join(dir, 'classes'))));
    await rt.verify(zip, 'com.example.CountParser');
    assert.deepEqual(await rt.run('t/zip', zip, 'com.example.CountParser', [{ msg: 'z' }], out({ count: 'long' })), [{ count: 1 }]);
  });

  test('without java on the configured path the runtime is unavailable with a clear message', async () => {
    const none = new JvmPluginRuntime({ timeoutMs: TIMEOUT_MS, memoryMb: 64, java: path.join(dir, 'no-such-java') });
    assert.equal(await none.available(), false);
    await assert.rejects(none.run('t/none', jar, 'com.example.UpperParser', [{}], out({})), (err: Error) => {
      assert.ok(err instanceof PluginUnavailableError);
      assert.equal(err.message, "Java plugins need a JDK (java and javac) on the server's PATH");
      return true;
    });
  });

  test('a parser that never returns times out and the jar still runs afterwards', async () => {
    await assert.rejects(rt.run('t/spin', jar, 'com.example.SpinParser', [{}], out({})), PluginTimeoutError);
    const res = await rt.run('t/upper', jar, 'com.example.UpperParser', [{ msg: 'again', n: 1 }], out({ msg: 'string' }));
    assert.deepEqual(res, [{ msg: 'AGAIN' }, { msg: 'AGAIN' }]);
  });
});

/** Compiles the fixtures and packs them with `jar`, or with a stored zip when the jar tool is missing. */
function buildJar(dir: string): string {
  const src = new URL('./fixtures/plugins/java/com/example/', import.meta.url).pathname;
  const classes = path.join(dir, 'classes');
  execFileSync('javac', ['-encoding', 'UTF-8', '-d', classes, ...readdirSync(src).map((f) => path.join(src, f))]);
  const jar = path.join(dir, 'plugins.jar');
  try {
    execFileSync('jar', ['cf', jar, '-C', classes, '.'], { stdio: 'ignore' });
  } catch {
    writeFileSync(jar, storedZip(classFiles(classes)));
  }
  return jar;
}

function classFiles(classes: string): Array<[string, Buffer]> {
  const files = readdirSync(classes, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.class'));
  return files.map((f) => [f.split(path.sep).join('/'), readFileSync(path.join(classes, f))]);
}

/** A minimal zip with uncompressed entries, which is all a class loader needs. */
function storedZip(entries: Array<[string, Buffer]>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBuf, data);
    centrals.push(central, nameBuf);
    offset += 30 + nameBuf.length + data.length;
  }
  const dirBuf = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dirBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dirBuf, end]);
}
