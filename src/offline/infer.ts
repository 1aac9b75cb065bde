/**
 * Schema inference (POST /v2/schemas, datasources without a schema) and the
 * check of a given schema against the files. DuckDB's own readers detect the
 * types: for json and csv they sample rows and pick the narrowest type that
 * holds every sampled value; parquet files carry their types.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { ApiError } from '../errors.ts';
import type { SchemaField, ValType } from '../ingest/types.ts';
import { engineMessage } from '../sql/check.ts';
import { quoteIdent } from '../sql/types.ts';
import { openSandbox, type Sandbox } from './sandbox.ts';
import { showPaths, sniffSql, type SourceFile, type SourceSpec } from './sources.ts';

/** Files sampled by inference: enough to see the variety, bounded in time. */
export const SAMPLE_FILES = 50;

export interface InferDeps {
  memoryLimit: string;
  threads: number;
  tmpDir: string;
}

/** Datasource valtype of a DuckDB column type; nested and other types are read as string (JSON text). */
export function valtypeOf(duckType: string): ValType {
  const t = duckType.toUpperCase();
  if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|HUGEINT|UHUGEINT)$/.test(t)) return 'long';
  if (/^(FLOAT|DOUBLE|REAL)$/.test(t) || t.startsWith('DECIMAL')) return 'float';
  if (t === 'BOOLEAN') return 'boolean';
  if (t.startsWith('TIMESTAMP') || t === 'DATE') return 'date';
  return 'string';
}

async function describe(conn: DuckDBConnection, sql: string): Promise<Array<{ name: string; type: string }>> {
  const r = await conn.runAndReadAll(`DESCRIBE ${sql}`);
  return r.getRowObjectsJson().map((row) => ({ name: String(row.column_name), type: String(row.column_type) }));
}

/** A sandbox that may read exactly the sampled files. */
function sampleSandbox(deps: InferDeps, sample: SourceFile[]): Promise<Sandbox> {
  return openSandbox({
    memoryLimit: deps.memoryLimit, threads: deps.threads,
    tempDir: path.join(deps.tmpDir, `infer-${randomUUID()}`),
    readFiles: sample.map((f) => f.file), dirs: [],
  });
}

/** Infers `[{key, valtype, required:false}]` from the first files; E18623 when DuckDB cannot read them as the file type. */
export async function inferSchema(deps: InferDeps, spec: SourceSpec, files: SourceFile[]): Promise<SchemaField[]> {
  if (spec.fileType === 'text') return [{ key: 'text', valtype: 'string', required: false }];
  const sample = files.slice(0, SAMPLE_FILES);
  const box = await sampleSandbox(deps, sample);
  try {
    const cols = await describe(box.conn, sniffSql(spec, sample.map((f) => f.file)));
    return cols.map((c) => ({ key: c.name, valtype: valtypeOf(c.type), required: false }));
  } catch (err) {
    const shown = sample.slice(0, 3).map((f) => f.shown).join(', ');
    throw new ApiError('E18623', `cannot read ${shown}${sample.length > 3 ? ', ...' : ''} as ${spec.fileType}: ${showPaths(engineMessage(err).split('\n')[0] ?? '', sample)}`, { cause: err });
  } finally {
    await box.close();
  }
}

/** Which inferred valtypes a declared valtype accepts. */
const ACCEPTS: Record<string, ValType[]> = {
  string: ['string', 'long', 'float', 'boolean', 'date', 'jsonstring'],
  float: ['float', 'long'],
  long: ['long'],
  boolean: ['boolean'],
  date: ['date', 'string'],
};

/** Checks a declared schema against the inferred one; E18615 naming the first field that does not fit. */
export function verifySchema(declared: SchemaField[], inferred: SchemaField[]): void {
  const found = new Map(inferred.map((f) => [f.key, f.valtype]));
  for (const f of declared) {
    const got = found.get(f.key);
    if (got === undefined) {
      throw new ApiError('E18615', `field "${f.key}" is not in the files (found: ${[...found.keys()].slice(0, 20).join(', ')}); set noVerifySchema to skip the check`);
    }
    if (!(ACCEPTS[f.valtype] ?? []).includes(got)) {
      throw new ApiError('E18615', `field "${f.key}" is declared ${f.valtype} but the files hold ${got}; set noVerifySchema to skip the check`);
    }
  }
}

/**
 * A `date` field accepts files holding strings only when they are times:
 * E18615 names the first sampled value that is not (the runs would fail on
 * it). `fields` pairs each such field with its column in the sniffed files.
 */
export async function checkTimes(deps: InferDeps, spec: SourceSpec, files: SourceFile[], fields: Array<{ key: string; col: string }>): Promise<void> {
  if (fields.length === 0) return;
  const sample = files.slice(0, SAMPLE_FILES);
  const box = await sampleSandbox(deps, sample);
  try {
    for (const f of fields) {
      const c = quoteIdent(f.col);
      const r = await box.conn.runAndReadAll(`SELECT CAST(${c} AS VARCHAR) FROM (${sniffSql(spec, sample.map((x) => x.file))}) WHERE ${c} IS NOT NULL AND TRY_CAST(${c} AS TIMESTAMP) IS NULL LIMIT 1`);
      const v = r.getRows()[0]?.[0];
      if (v !== undefined && v !== null) {
        throw new ApiError('E18615', `field "${f.key}" is declared date but the files hold "${String(v).slice(0, 80)}", which is not a time; set noVerifySchema to skip the check`);
      }
    }
  } finally {
    await box.close();
  }
}
