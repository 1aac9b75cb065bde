/**
 * Job export specs: where a job's result goes after each successful run.
 * Types kodo (a bucket of the bucket store) and hdfs (under the hdfs root);
 * both the reference's (`compress`, `overwrite`) and the SDK's
 * (`compression`, `saveMode`) spellings are accepted.
 */
import type { AccountConfig, Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import type { SchemaField } from '../ingest/types.ts';
import { bucketRoot, checkBucketName, checkHdfsGrant, checkKey, hdfsRelative } from './paths.ts';

export type ExportFormat = 'parquet' | 'json' | 'csv' | 'text';
export type SaveMode = 'overwrite' | 'append' | 'errorIfExists' | 'ignore';

/** A validated job export. */
export interface JobExportSpec {
  type: 'kodo' | 'hdfs';
  bucket?: string;
  /** kodo key prefix or hdfs path (relative to the hdfs root), with magic variables. */
  keyPrefix: string;
  /** Output field -> job result column. */
  fields: Array<{ out: string; col: string }>;
  format: ExportFormat;
  /** DuckDB COMPRESSION value. */
  compression: string;
  delimiter: string;
  containsHeader: boolean;
  partitionBy: string[];
  fileCount: number;
  saveMode: SaveMode;
  retentionDays: number;
}

const FORMATS: ExportFormat[] = ['parquet', 'json', 'csv', 'text'];
const MODES: SaveMode[] = ['overwrite', 'append', 'errorIfExists', 'ignore'];
const FIELD_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;
const bad = (detail: string): ApiError => new ApiError('E18651', detail);

function compressionOf(format: ExportFormat, s: Record<string, unknown>): string {
  const raw = s.compression ?? (s.compress === true ? 'gzip' : s.compress === false ? 'none' : undefined);
  if (raw === undefined || raw === null || raw === '') return format === 'parquet' ? 'snappy' : 'none';
  if (typeof raw !== 'string') throw bad('compression must be a string (or compress a boolean)');
  const c = raw.toLowerCase();
  const allowed = format === 'parquet' ? ['none', 'snappy', 'gzip', 'zstd'] : ['none', 'gzip'];
  // The reference: compress has no effect on parquet, which compresses itself.
  if (format === 'parquet' && s.compression === undefined) return 'snappy';
  if (!allowed.includes(c)) throw bad(`compression "${raw}" is not supported for ${format} by this server (supported: ${allowed.join(', ')})`);
  return format === 'parquet' && c === 'none' ? 'uncompressed' : c;
}

/** Validates a job export body against the job's result schema. */
export function parseExportSpec(config: Config, account: AccountConfig, typeRaw: unknown, raw: unknown, schema: SchemaField[]): JobExportSpec {
  const type = typeof typeRaw === 'string' ? typeRaw.toLowerCase() : '';
  if (type !== 'kodo' && type !== 'hdfs') throw bad(`type must be kodo or hdfs, got ${JSON.stringify(typeRaw)}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('spec must be an object');
  const s = raw as Record<string, unknown>;
  const format = (typeof s.format === 'string' ? s.format.toLowerCase() : s.format ?? 'parquet') as ExportFormat;
  if (!FORMATS.includes(format)) throw bad(`format must be one of ${FORMATS.join(', ')}`);
  let keyPrefix: string;
  let bucket: string | undefined;
  if (type === 'kodo') {
    bucket = checkBucketName(s.bucket, 'E18651');
    bucketRoot(config, account, bucket, { create: true });
    keyPrefix = s.keyPrefix === undefined || s.keyPrefix === null ? '' : String(s.keyPrefix);
    if (keyPrefix.length > 128) throw bad('keyPrefix: at most 128 characters');
    checkKey(keyPrefix.replace(/\$\([^)]*\)/g, 'v'), 'keyPrefix');
  } else {
    if (typeof s.path !== 'string' || s.path === '') throw bad('spec.path (an hdfs path) is required');
    keyPrefix = hdfsRelative(s.path);
    checkHdfsGrant(account, keyPrefix.replace(/\$\(.*$/, '').replace(/\/[^/]*$/, ''), s.path);
  }
  const cols = new Set(schema.map((f) => f.key));
  let fields: JobExportSpec['fields'];
  if (s.fields === undefined || s.fields === null) fields = schema.map((f) => ({ out: f.key, col: f.key }));
  else {
    if (typeof s.fields !== 'object' || Array.isArray(s.fields)) throw bad('fields must be an object {exportField: "#jobField"}');
    fields = Object.entries(s.fields as Record<string, unknown>).map(([out, v]) => {
      if (!FIELD_RE.test(out)) throw bad(`field name "${out.slice(0, 64)}" must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
      if (typeof v !== 'string') throw bad(`fields.${out} must be a string naming a job field ("#field")`);
      const col = v.startsWith('#') ? v.slice(1) : v;
      if (!cols.has(col)) throw bad(`fields.${out}: the job's result has no field "${col}" (it has ${[...cols].join(', ')})`);
      return { out, col };
    });
    if (fields.length === 0) throw bad('fields must name at least one field');
  }
  const outs = new Set(fields.map((f) => f.out));
  const partitionBy = s.partitionBy === undefined || s.partitionBy === null ? [] : s.partitionBy;
  if (!Array.isArray(partitionBy) || !partitionBy.every((p) => typeof p === 'string' && outs.has(p))) {
    throw bad(`partitionBy must be an array of exported field names (${[...outs].join(', ')})`);
  }
  if (partitionBy.length >= fields.length) throw bad('partitionBy must leave at least one field in the files');
  // The Go SDK sends 0 for an unset fileCount of hdfs exports: 0 means the default.
  const fileCount = s.fileCount === undefined || s.fileCount === null || s.fileCount === 0 ? 1 : s.fileCount;
  if (typeof fileCount !== 'number' || !Number.isInteger(fileCount) || fileCount < 1 || fileCount > 999) throw bad('fileCount must be an integer from 1 to 999');
  let saveMode: SaveMode = 'overwrite';
  if (s.saveMode !== undefined && s.saveMode !== null && s.saveMode !== '') {
    const m = MODES.find((x) => x.toLowerCase() === String(s.saveMode).toLowerCase());
    if (!m) throw bad(`saveMode must be one of ${MODES.join(', ')}`);
    saveMode = m;
  } else if (s.overwrite === false) saveMode = 'append';
  else if (s.overwrite !== undefined && typeof s.overwrite !== 'boolean') throw bad('overwrite must be a boolean');
  const retention = s.retention ?? 0;
  if (typeof retention !== 'number' || !Number.isFinite(retention)) throw bad('retention must be a number of days');
  const delimiter = s.delimiter === undefined ? ',' : s.delimiter;
  if (typeof delimiter !== 'string' || delimiter.length < 1 || delimiter.length > 2) throw bad('delimiter must be one character');
  if (s.containsHeader !== undefined && typeof s.containsHeader !== 'boolean') throw bad('containsHeader must be a boolean');
  return {
    type, bucket, keyPrefix, fields, format, compression: compressionOf(format, s),
    delimiter: delimiter === '\\t' ? '\t' : delimiter, containsHeader: s.containsHeader !== false,
    partitionBy: partitionBy as string[], fileCount, saveMode, retentionDays: Math.max(0, retention),
  };
}
