/**
 * The official Java contract in the JVM host, below the HTTP API: how
 * SourceData fields are filled from every repo type, how OutputData fields
 * are read and typed, and the run errors a bean plugin can cause. Real JVMs;
 * jars built here with javac and jar.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PluginRunError } from '../src/plugins/errors.ts';
import { JvmPluginRuntime } from '../src/plugins/jvm-runtime.ts';
import { tmpDir } from './helpers.ts';
import { buildJar } from './java-jars.ts';

const SOURCE = `package userWrite.bean;
import java.util.List;
import java.util.Map;
public class SourceData {
  private String s; private long l; private Integer i; private double d; private Float f; private boolean b;
  private java.sql.Timestamp t; private java.util.Date dt; private java.time.Instant in; private java.math.BigInteger big;
  private List<Object> arr; private Map<String, Object> map; private String mapText; private String num; private Object any;
  public String describe() {
    return s + "|" + l + "|" + i + "|" + d + "|" + f + "|" + b + "|" + (t == null ? null : t.getTime()) + "|"
      + (dt == null ? null : dt.getTime()) + "|" + (in == null ? null : in.toEpochMilli()) + "|" + big + "|" + arr + "|" + map
      + "|" + mapText + "|" + num + "|" + (any == null ? null : any.getClass().getSimpleName());
  }
}`;

const OUTPUT = `package userWrite.bean;
public class OutputData {
  public String text; public int small; public Long count; public float ratio; public java.math.BigDecimal exact;
  public java.sql.Timestamp when; public boolean flag; public char letter; public java.util.List<String> tags; public String missing;
}`;

const PARSER = `package com.example;
import java.util.*;
import userWrite.bean.*;
public class Beans {
  public static List<OutputData> parse(SourceData s) {
    OutputData o = new OutputData();
    o.text = s.describe(); o.small = 7; o.count = 9007199254740993L; o.ratio = 0.5f; o.exact = new java.math.BigDecimal("1.25");
    o.when = new java.sql.Timestamp(1700000000123L); o.flag = true; o.letter = 'x'; o.tags = Arrays.asList("a", "b");
    return Collections.singletonList(o);
  }
}`;

describe('official Java contract in the JVM host', () => {
  const dir = tmpDir();
  const rt = new JvmPluginRuntime({ timeoutMs: 30_000, memoryMb: 64, workDir: path.join(dir, 'work') });
  after(async () => {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const jarOf = (name: string, sources: Record<string, string>): string => {
    const file = path.join(dir, `${name}.jar`);
    writeFileSync(file, buildJar(dir, name, sources));
    return file;
  };

  it('describes the beans, fills every field type by name and reads OutputData with derived types', async () => {
    const jar = jarOf('beans', { 'userWrite/bean/SourceData.java': SOURCE, 'userWrite/bean/OutputData.java': OUTPUT, 'com/example/Beans.java': PARSER });
    const info = await rt.verify(jar, 'com.example.Beans');
    assert.equal(info.form, 'bean');
    assert.deepEqual(info.input?.map((f) => `${f.name}:${f.java}`), [
      's:java.lang.String', 'l:long', 'i:java.lang.Integer', 'd:double', 'f:java.lang.Float', 'b:boolean', 't:java.sql.Timestamp',
      'dt:java.util.Date', 'in:java.time.Instant', 'big:java.math.BigInteger', 'arr:java.util.List', 'map:java.util.Map',
      'mapText:java.lang.String', 'num:java.lang.String', 'any:java.lang.Object',
    ]);
    assert.deepEqual(info.output?.map((f) => `${f.name}:${f.type}`), [
      'text:string', 'small:long', 'count:long', 'ratio:float', 'exact:float', 'when:long', 'flag:string', 'letter:string', 'tags:string', 'missing:string',
    ]);
    const output = (info.output ?? []).map((o) => ({ name: o.name, type: o.type }));
    const point = {
      s: 'hi', l: 12n ** 17n, i: 41, d: 1.5, f: 2, b: true, t: '2024-01-02T03:04:05Z', dt: '2024-01-02T03:04:05.5+01:00', in: '2024-01-02 03:04:05Z',
      big: 123456789012345678901234567890n, arr: [1, 'x'], map: { k: { n: 1 } }, mapText: { k: 'v' }, num: 42, any: 'x', ignored: 'not in SourceData',
    };
    const [row] = await rt.run('acct/com.example.Beans', jar, 'com.example.Beans', [point], output);
    assert.deepEqual(row, {
      text: `hi|${12n ** 17n}|41|1.5|2.0|true|1704164645000|1704161045500|1704164645000|123456789012345678901234567890|[1, x]|{k={n=1}}|{"k":"v"}|42|String`,
      small: 7, count: 9007199254740993n, ratio: 0.5, exact: 1.25, when: 1700000000123, flag: 'true', letter: 'x', tags: '["a","b"]',
    });
    // A point without the fields leaves the defaults (null, 0, false).
    const [empty] = await rt.run('acct/com.example.Beans', jar, 'com.example.Beans', [{}], output);
    assert.equal(empty?.text, 'null|0|null|0.0|null|false|null|null|null|null|null|null|null|null|null');
  });

  it('fails a run with the field and value when a value does not fit, and when parse returns something else', async () => {
    const jar = jarOf('narrow', {
      'userWrite/bean/SourceData.java': 'package userWrite.bean; public class SourceData { public int small; public java.sql.Timestamp at; }',
      'userWrite/bean/OutputData.java': 'package userWrite.bean; public class OutputData { public int small; }',
      'com/example/Narrow.java': `package com.example;
        import java.util.*;
        public class Narrow {
          public List parse(userWrite.bean.SourceData s) {
            if (s.small == 13) return Collections.singletonList("not an OutputData");
            userWrite.bean.OutputData o = new userWrite.bean.OutputData(); o.small = s.small; return Collections.singletonList(o);
          }
        }`,
    });
    const out = [{ name: 'small', type: 'long' as const }];
    assert.deepEqual(await rt.run('a/Narrow', jar, 'com.example.Narrow', [{ small: 5 }], out), [{ small: 5 }]);
    await assert.rejects(rt.run('a/Narrow', jar, 'com.example.Narrow', [{ small: 5 }, { small: 2 ** 40 }], out), (err: Error) => {
      assert.ok(err instanceof PluginRunError);
      assert.match(err.message, /point #1: field small value 1099511627776 does not fit userWrite\.bean\.SourceData\.small \(int\)/);
      return true;
    });
    await assert.rejects(rt.run('a/Narrow', jar, 'com.example.Narrow', [{ at: 'yesterday' }], out), /field at value "yesterday" does not fit/);
    await assert.rejects(rt.run('a/Narrow', jar, 'com.example.Narrow', [{ small: 13 }], out), /returned a java\.lang\.String in its list; expected userWrite\.bean\.OutputData/);
    // The JVM survives run errors: the next batch works.
    assert.deepEqual(await rt.run('a/Narrow', jar, 'com.example.Narrow', [{ small: 6 }], out), [{ small: 6 }]);
  });

  it('refuses beans whose types cannot be filled or whose parse returns the wrong type', async () => {
    const badField = jarOf('badfield', {
      'userWrite/bean/SourceData.java': 'package userWrite.bean; public class SourceData { public java.io.File f; }',
      'userWrite/bean/OutputData.java': 'package userWrite.bean; public class OutputData { public String s; }',
      'com/example/BadField.java': 'package com.example; public class BadField { public java.util.List<userWrite.bean.OutputData> parse(userWrite.bean.SourceData s) { return null; } }',
    });
    await assert.rejects(rt.verify(badField, 'com.example.BadField'), /SourceData field f has type java\.io\.File, which no repo value converts to/);
    const badReturn = jarOf('badreturn', {
      'userWrite/bean/SourceData.java': 'package userWrite.bean; public class SourceData { public String s; }',
      'userWrite/bean/OutputData.java': 'package userWrite.bean; public class OutputData { public String s; }',
      'com/example/BadReturn.java': 'package com.example; public class BadReturn { public java.util.List<String> parse(userWrite.bean.SourceData s) { return null; } }',
    });
    await assert.rejects(rt.verify(badReturn, 'com.example.BadReturn'), /parse must return List<userWrite\.bean\.OutputData>, not java\.util\.List<java\.lang\.String>/);
    const noFields = jarOf('nofields', {
      'userWrite/bean/SourceData.java': 'package userWrite.bean; public class SourceData { public String s; }',
      'userWrite/bean/OutputData.java': 'package userWrite.bean; public class OutputData { }',
      'com/example/NoFields.java': 'package com.example; public class NoFields { public userWrite.bean.OutputData parse(userWrite.bean.SourceData s) { return null; } }',
    });
    await assert.rejects(rt.verify(noFields, 'com.example.NoFields'), /OutputData has no fields/);
  });
});
