/**
 * Java plugins end to end through the HTTP API, in both contracts: this
 * server's Map contract and the official Pandora one (userWrite.bean.SourceData
 * / OutputData). Jars are built here from Java source with javac and jar (CI
 * installs a JDK).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { AK, AK2, errorCode, fresh, makeRepo, push, SK, SK2, startServer, tmpDir, type TestServer } from './helpers.ts';
import { buildJar, fixtureJar } from './java-jars.ts';

/** alice may run jar plugins, bob may not. */
export const JAR_ACCOUNTS = [
  { id: 'alice', accessKey: AK, secretKey: SK, jarPlugins: true },
  { id: 'bob', accessKey: AK2, secretKey: SK2 },
];

/** The official contract: one output row per word of `msg`. */
export const WORDS_SOURCES = {
  'userWrite/bean/SourceData.java': `package userWrite.bean;
import java.sql.Timestamp;
public class SourceData {
  private String msg;
  private long n;
  private Timestamp ts;
  private Double ratio;
  public String getMsg() { return msg; }
  public long getN() { return n; }
  public Timestamp getTs() { return ts; }
  public Double getRatio() { return ratio; }
}`,
  'userWrite/bean/OutputData.java': `package userWrite.bean;
import java.sql.Timestamp;
public class OutputData {
  private String word;
  private long length;
  private Timestamp at;
  private double half;
  public OutputData(String word, Timestamp at, double half) { this.word = word; this.length = word.length(); this.at = at; this.half = half; }
}`,
  'com/example/WordSplitter.java': `package com.example;
import java.util.ArrayList;
import java.util.List;
import userWrite.bean.OutputData;
import userWrite.bean.SourceData;
public class WordSplitter {
  public List<OutputData> parse(SourceData s) {
    List<OutputData> out = new ArrayList<>();
    if (s.getMsg() == null) return out;
    for (String w : s.getMsg().split(" ")) out.add(new OutputData(w, s.getTs(), s.getN() / 2.0 + (s.getRatio() == null ? 0 : s.getRatio())));
    return out;
  }
}`,
};

const WORDS_SCHEMA = [
  { key: 'msg', valtype: 'string' }, { key: 'n', valtype: 'long' }, { key: 'ts', valtype: 'date' }, { key: 'ratio', valtype: 'float' },
];

describe('Java plugins through the API', () => {
  let s: TestServer;
  const dir = tmpDir();
  before(async () => { s = await startServer({ accounts: JAR_ACCOUNTS }); });
  after(async () => { await s.close(); rmSync(dir, { recursive: true, force: true }); });

  const upload = (name: string, body: Buffer, headers: Record<string, string> = {}, ak = AK, sk = SK) =>
    s.call({ method: 'POST', url: `/v2/plugins/${name}`, body, headers: { 'content-type': 'application/java-archive', ...headers }, ak, sk });
  const create = (src: string, name: string, dest: string, body: unknown) =>
    s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/${name}/to/${dest}`, body });
  const rows = async (repo: string) => JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=10` })).body).records;

  it('runs a Map-contract jar in a transform before SQL, and refuses it at use when its class is not the plugin name', async () => {
    const jar = fixtureJar(dir, 'UpperParser');
    const md5 = createHash('md5').update(jar).digest('base64');
    const up = await upload('com.example.UpperParser', jar, { 'content-md5': md5 });
    assert.equal(up.statusCode, 200, up.body);
    assert.equal(JSON.parse((await s.call({ method: 'GET', url: '/v2/plugins/com.example.UpperParser' })).body).kind, 'java');
    // Stored as any body is; the wrong class name is found when the plugin is used.
    assert.equal((await upload('com.example.Other', jar)).statusCode, 200);
    const src = await makeRepo(s, fresh('msgs'), [{ key: 'msg', valtype: 'string' }, { key: 'n', valtype: 'long' }]);
    const wrong = await create(src, 'other', fresh('d'), { plugin: { name: 'com.example.Other', output: [{ name: 'msg' }] } });
    assert.equal(errorCode(wrong), 'E18617');
    assert.match(wrong.body, /class com\.example\.Other was not found in the jar/);
    // A Map-contract plugin declares no output fields, so none can be derived.
    const noOutput = await create(src, 'noout', fresh('d'), { plugin: { name: 'com.example.UpperParser' } });
    assert.equal(errorCode(noOutput), 'E18207');
    assert.match(noOutput.body, /plugin\.output must list the output fields/);

    const dest = fresh('upper');
    const res = await create(src, 'up', dest, {
      plugin: { name: 'com.example.UpperParser', output: [{ name: 'msg' }, { name: 'copy', type: 'long' }, { name: 'n2', type: 'long' }] },
      mode: 'sql', code: `select msg, copy, n2 from ${src} order by copy`, interval: '5s',
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await push(s, src, 'msg=hello\tn=21')).statusCode, 200);
    await s.ctx.runner.runNow('alice', src, 'up');
    const t = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/up` })).body);
    assert.equal(t.status.lastError, null);
    assert.deepEqual(await rows(dest), [{ msg: 'HELLO', copy: 1, n2: 42 }, { msg: 'HELLO', copy: 2, n2: 42 }]);
  });

  it('runs an official-contract jar (SourceData/OutputData beans) with its output derived from OutputData', async () => {
    const jar = buildJar(dir, 'words', WORDS_SOURCES);
    assert.equal((await upload('com.example.WordSplitter', jar)).statusCode, 200);
    // verify answers the SDK's shape: OutputData's fields with their repo types, in declaration order.
    const v = await s.call({ method: 'POST', url: '/v2/verify/plugins/com.example.WordSplitter' });
    assert.equal(v.statusCode, 200, v.body);
    assert.deepEqual(JSON.parse(v.body).outputFields, [
      { name: 'word', type: 'string' }, { name: 'length', type: 'long' }, { name: 'at', type: 'long' }, { name: 'half', type: 'float' },
    ]);

    const src = await makeRepo(s, fresh('lines'), WORDS_SCHEMA);
    const dest = fresh('words');
    const res = await create(src, 'split', dest, { plugin: { name: 'com.example.WordSplitter' }, interval: '5s' });
    assert.equal(res.statusCode, 200, res.body);
    const t = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/split` })).body);
    assert.deepEqual(t.spec.plugin.output.map((o: { name: string }) => o.name), ['word', 'length', 'at', 'half']);
    const destRepo = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dest}` })).body);
    assert.deepEqual(destRepo.schema.map((f: { key: string; valtype: string }) => `${f.key}:${f.valtype}`), ['word:string', 'length:long', 'at:long', 'half:float']);

    const pushed = await push(s, src, 'msg=hello big world\tn=5\tts=2024-01-02T03:04:05.250+08:00\tratio=0.25\nn=1');
    assert.equal(pushed.statusCode, 200, pushed.body);
    await s.ctx.runner.runNow('alice', src, 'split');
    const status = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/split` })).body).status;
    assert.equal(status.lastError, null);
    const at = Date.parse('2024-01-02T03:04:05.250+08:00');
    assert.deepEqual(await rows(dest), [
      { word: 'hello', length: 5, at, half: 2.75 },
      { word: 'big', length: 3, at, half: 2.75 },
      { word: 'world', length: 5, at, half: 2.75 },
    ]);
  });

  it('checks an official-contract jar against the source repo and the declared output, naming what is wrong', async () => {
    const jar = buildJar(dir, 'words2', WORDS_SOURCES);
    const name = 'com.example.WordSplitter';
    const up = await upload(name, jar); // may exist from the previous test
    assert.ok(up.statusCode === 200 || errorCode(up) === 'E18217', up.body);
    const missing = await makeRepo(s, fresh('nomsg'), [{ key: 'msg', valtype: 'string' }, { key: 'ts', valtype: 'date' }, { key: 'ratio', valtype: 'float' }]);
    const r1 = await create(missing, 't', fresh('d'), { plugin: { name } });
    assert.equal(errorCode(r1), 'E18617');
    assert.match(r1.body, /SourceData field \\"n\\" is not a field of repo/);
    const retyped = await makeRepo(s, fresh('strn'), [{ key: 'msg', valtype: 'string' }, { key: 'n', valtype: 'string' }, { key: 'ts', valtype: 'date' }, { key: 'ratio', valtype: 'float' }]);
    const r2 = await create(retyped, 't', fresh('d'), { plugin: { name } });
    assert.equal(errorCode(r2), 'E18617');
    assert.match(r2.body, /SourceData field \\"n\\" is long, but string values/);
    const src = await makeRepo(s, fresh('ok'), WORDS_SCHEMA);
    const r3 = await create(src, 't', fresh('d'), { plugin: { name, output: [{ name: 'word' }, { name: 'color' }] } });
    assert.equal(errorCode(r3), 'E18617');
    assert.match(r3.body, /plugin\.output field \\"color\\" is not a field of userWrite\.bean\.OutputData/);
    // A declared subset of OutputData is fine.
    const dest = fresh('d');
    assert.equal((await create(src, 'sub', dest, { plugin: { name, output: [{ name: 'word' }] } })).statusCode, 200);
    // Nothing was stored by the refused creates.
    const list = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms` })).body);
    assert.deepEqual(list.transforms.map((t: { name: string }) => t.name), ['sub']);
    // An update that leaves output out re-derives it: fields are only added.
    const put = await s.call({ method: 'PUT', url: `/v2/repos/${src}/transforms/sub`, body: { plugin: { name } } });
    assert.equal(put.statusCode, 200, put.body);
    const destRepo = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dest}` })).body);
    assert.deepEqual(destRepo.schema.map((f: { key: string }) => f.key), ['word', 'length', 'at', 'half']);
  });

  it('refuses an official-contract jar without OutputData, or whose parse does not take SourceData', async () => {
    const noOut = buildJar(dir, 'noout', {
      'userWrite/bean/SourceData.java': 'package userWrite.bean; public class SourceData { public String msg; }',
      'com/example/NoOut.java': 'package com.example; public class NoOut { public java.util.List<Object> parse(userWrite.bean.SourceData s) { return null; } }',
    });
    assert.equal((await upload('com.example.NoOut', noOut)).statusCode, 200);
    const v1 = await s.call({ method: 'POST', url: '/v2/verify/plugins/com.example.NoOut' });
    assert.equal(errorCode(v1), 'E18617');
    assert.match(v1.body, /the jar has userWrite\.bean\.SourceData but no class userWrite\.bean\.OutputData/);
    const badParse = buildJar(dir, 'badparse', {
      'userWrite/bean/SourceData.java': 'package userWrite.bean; public class SourceData { public String msg; }',
      'userWrite/bean/OutputData.java': 'package userWrite.bean; public class OutputData { public String msg; }',
      'com/example/BadParse.java': 'package com.example; public class BadParse { public String parse(String s) { return s; } }',
    });
    assert.equal((await upload('com.example.BadParse', badParse)).statusCode, 200);
    const v2 = await s.call({ method: 'POST', url: '/v2/verify/plugins/com.example.BadParse' });
    assert.equal(errorCode(v2), 'E18617');
    assert.match(v2.body, /needs a public method parse\(userWrite\.bean\.SourceData\) returning List<userWrite\.bean\.OutputData>/);
  });

  it('refuses jars to an account without the jarPlugins grant, storing nothing, while other uploads work', async () => {
    const jar = fixtureJar(dir, 'UpperParser');
    const res = await upload('com.example.UpperParser', jar, {}, AK2, SK2);
    assert.equal(res.statusCode, 403);
    assert.equal(errorCode(res), 'E18665');
    assert.match(res.body, /jarPlugins/);
    assert.equal(errorCode(await s.call({ method: 'GET', url: '/v2/plugins/com.example.UpperParser', ak: AK2, sk: SK2 })), 'E18216');
    const js = await s.call({ method: 'POST', url: '/v2/plugins/com.example.Js', body: 'export default (p) => p;', ak: AK2, sk: SK2, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(js.statusCode, 200, js.body);
  });
});
