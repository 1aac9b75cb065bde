/**
 * Checks of a plugin against the transform that uses it: the official Java
 * contract's SourceData bean against the source repo's schema, and a
 * transform's declared output against OutputData (or the output derived
 * from it when the transform declares none).
 */
import type { SchemaField } from '../ingest/types.ts';
import { PluginInvalidError } from './errors.ts';
import type { JvmPluginInfo } from './jvm-runtime.ts';
import type { OutputField } from './output.ts';

const OBJ = 'java.lang.Object';
const STR = 'java.lang.String';
const INTS = ['long', 'java.lang.Long', 'int', 'java.lang.Integer', 'short', 'java.lang.Short', 'byte', 'java.lang.Byte', 'java.math.BigInteger'];
const FLOATS = ['double', 'java.lang.Double', 'float', 'java.lang.Float', 'java.math.BigDecimal'];
const TIMES = ['java.sql.Timestamp', 'java.util.Date', 'java.time.Instant'];

/** Java field types a SourceData field may have for each repo type (the host converts between them). */
const JAVA_FOR: Record<string, readonly string[]> = {
  string: [STR, OBJ],
  jsonstring: [STR, OBJ],
  long: [...INTS, ...FLOATS, ...TIMES, STR, OBJ],
  float: [...FLOATS, STR, OBJ],
  date: [...TIMES, STR, OBJ],
  boolean: ['boolean', 'java.lang.Boolean', STR, OBJ],
  array: ['java.util.List', 'java.util.Collection', 'java.lang.Iterable', 'java.util.ArrayList', STR, OBJ],
  map: ['java.util.Map', 'java.util.LinkedHashMap', 'java.util.HashMap', STR, OBJ],
};

/** Suggested Java type per repo type, for error messages. */
const SUGGEST: Record<string, string> = {
  string: 'String', jsonstring: 'String', long: 'long', float: 'double', date: 'java.sql.Timestamp', boolean: 'boolean', array: 'java.util.List', map: 'java.util.Map',
};

/**
 * Each SourceData field must name a field of the source repo and have a Java
 * type its values convert to.
 * @throws PluginInvalidError naming the field.
 */
export function checkSourceBean(info: JvmPluginInfo, repo: string, schema: readonly SchemaField[]): void {
  const fields = new Map(schema.map((f) => [f.key, f]));
  for (const f of info.input ?? []) {
    const field = fields.get(f.name);
    if (!field) {
      throw new PluginInvalidError(`userWrite.bean.SourceData field "${f.name}" is not a field of repo ${repo} (${[...fields.keys()].join(', ')})`);
    }
    const allowed = JAVA_FOR[field.valtype] ?? [STR, OBJ];
    if (!allowed.includes(f.java)) {
      throw new PluginInvalidError(
        `userWrite.bean.SourceData field "${f.name}" is ${f.java}, but ${field.valtype} values of repo ${repo} need ${SUGGEST[field.valtype] ?? 'String'}`,
      );
    }
  }
}

/**
 * The output a transform runs with: the declared one (every name must be an
 * OutputData field when the plugin follows the official contract), or the
 * one derived from OutputData when none was declared; undefined when none
 * was declared and the plugin does not follow the official contract.
 * @throws PluginInvalidError when a declared name is not an OutputData field.
 */
export function resolveOutput(info: JvmPluginInfo | undefined, declared: readonly OutputField[]): OutputField[] | undefined {
  const derived = info?.form === 'bean' ? (info.output ?? []).map((o) => ({ name: o.name, type: o.type })) : undefined;
  if (declared.length === 0) return derived;
  if (derived) {
    const names = new Set(derived.map((o) => o.name));
    for (const o of declared) {
      if (!names.has(o.name)) throw new PluginInvalidError(`plugin.output field "${o.name}" is not a field of userWrite.bean.OutputData (${[...names].join(', ')})`);
    }
  }
  return [...declared];
}
