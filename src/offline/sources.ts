/**
 * Datasource files: which files a datasource (plus a run's file filter)
 * matches, and the DuckDB table function that reads them with the
 * datasource's schema. gzip files (.gz) are decompressed by DuckDB itself.
 */
import path from 'node:path';
import type { AccountConfig, Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import type { SchemaField } from '../ingest/types.ts';
import { inputTypeSql, quoteIdent, quoteLiteral } from '../sql/types.ts';
import { bucketRoot, checkHdfsGrant, hdfsRelative, isFolder, listFiles } from './paths.ts';

export type FileType = 'json' | 'text' | 'csv' | 'parquet';
export const FILE_TYPES: FileType[] = ['json', 'text', 'csv', 'parquet'];

/** The normalised spec of a kodo or hdfs datasource (or of a POST /v2/schemas body). */
export interface SourceSpec {
  type: 'kodo' | 'hdfs';
  bucket?: string;
  /** kodo key prefixes or hdfs paths. */
  prefixes: string[];
  fileType: FileType;
  delimiter?: string;
  containsHeader?: boolean;
}

/** A matched file: its absolute path and how to show it to the user. */
export interface SourceFile {
  file: string;
  shown: string;
  size: number;
}

/**
 * Every file the source matches, with `filter` (already expanded) appended
 * to each prefix. Prefixes and paths may themselves be expanded by the caller.
 * An hdfs path naming a folder means every file below it.
 */
export function matchFiles(config: Config, account: AccountConfig, spec: SourceSpec, filter = ''): SourceFile[] {
  const seen = new Set<string>();
  const out: SourceFile[] = [];
  const add = (files: Array<{ key: string; file: string; size: number }>, show: (k: string) => string): void => {
    for (const f of files) {
      if (seen.has(f.file)) continue;
      seen.add(f.file);
      out.push({ file: f.file, shown: show(f.key), size: f.size });
    }
  };
  if (spec.type === 'kodo') {
    const root = bucketRoot(config, account, spec.bucket ?? '');
    for (const prefix of spec.prefixes.length ? spec.prefixes : ['']) add(listFiles(root, prefix + filter), (k) => `kodo://${spec.bucket}/${k}`);
  } else {
    for (const p of spec.prefixes) {
      // `dir/` names the folder like `dir` does (a pattern ending in '/' would look for `dir//…`).
      let rel = hdfsRelative(p).replace(/\/+$/, '');
      checkHdfsGrant(account, rel, p);
      if (isFolder(config.hdfsRoot, rel)) rel += '/';
      add(listFiles(config.hdfsRoot, rel + filter), (k) => `hdfs:///${k}`);
    }
  }
  return out;
}

/** Where the files were looked for, for "no files" messages. */
export function describeLocation(spec: SourceSpec, filter = ''): string {
  if (spec.type === 'kodo') return (spec.prefixes.length ? spec.prefixes : ['']).map((p) => `kodo://${spec.bucket}/${p}${filter}*`).join(', ');
  return spec.prefixes.map((p) => `${p.replace(/\/+$/, '')}${filter ? '/' + filter : ''}`).join(', ');
}

const files = (fs: string[]): string => `[${fs.map(quoteLiteral).join(', ')}]`;

/** Options of read_csv for a csv datasource (all columns read as text, cast by the caller). */
function csvOptions(spec: SourceSpec): string {
  const delim = spec.delimiter ?? ',';
  return `delim=${quoteLiteral(delim === '\\t' ? '\t' : delim)}, header=${spec.containsHeader ? 'true' : 'false'}`;
}

/** A text file is one row per line, in a single column `text`. */
export function textReader(fs: string[]): string {
  return `read_csv(${files(fs)}, columns={'text': 'VARCHAR'}, header=false, delim='\\0', quote='', escape='', auto_detect=false, null_padding=false)`;
}

/** A SELECT reading `fs` as the datasource's `schema` (columns cast to their DuckDB types). */
export function readSql(spec: SourceSpec, fs: string[], schema: SchemaField[]): string {
  const cols = schema.map((f) => `CAST(${quoteIdent(f.key)} AS ${inputTypeSql(f)}) AS ${quoteIdent(f.key)}`).join(', ');
  switch (spec.fileType) {
    case 'parquet':
      return `SELECT ${cols} FROM read_parquet(${files(fs)}, union_by_name=true)`;
    case 'json': {
      const typed = schema.map((f) => `${quoteLiteral(f.key)}: ${quoteLiteral(inputTypeSql(f))}`).join(', ');
      return `SELECT ${schema.map((f) => quoteIdent(f.key)).join(', ')} FROM read_json(${files(fs)}, format='newline_delimited', columns={${typed}})`;
    }
    case 'csv': {
      if (spec.containsHeader) return `SELECT ${cols} FROM read_csv(${files(fs)}, ${csvOptions(spec)}, all_varchar=true, union_by_name=true)`;
      const named = schema.map((f) => `${quoteLiteral(f.key)}: 'VARCHAR'`).join(', ');
      // The schema names the leading columns: shorter rows are padded with NULLs, longer ones' extra columns ignored (strict_mode=false).
      return `SELECT ${cols} FROM read_csv(${files(fs)}, ${csvOptions(spec)}, columns={${named}}, auto_detect=false, null_padding=true, strict_mode=false)`;
    }
    case 'text':
      return `SELECT "text" FROM ${textReader(fs)}`;
  }
}

/** The auto-detecting reader used for schema inference. */
export function sniffSql(spec: SourceSpec, fs: string[]): string {
  switch (spec.fileType) {
    case 'parquet': return `SELECT * FROM read_parquet(${files(fs)}, union_by_name=true)`;
    case 'json': return `SELECT * FROM read_json(${files(fs)}, format='newline_delimited', union_by_name=true)`;
    case 'csv': return `SELECT * FROM read_csv(${files(fs)}, ${csvOptions(spec)}, union_by_name=true)`;
    case 'text': return `SELECT "text" FROM ${textReader(fs)}`;
  }
}

/** Parses the spec part shared by datasources and POST /v2/schemas; E18614 / E18638 on bad input. */
export function parseSourceSpec(type: unknown, raw: unknown): SourceSpec {
  const t = typeof type === 'string' ? type.toLowerCase() : type;
  if (t !== 'kodo' && t !== 'hdfs') throw new ApiError('E18614', `type must be kodo or hdfs, got ${JSON.stringify(type)}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ApiError('E18614', 'spec must be an object');
  const s = raw as Record<string, unknown>;
  const fileType = typeof s.fileType === 'string' ? s.fileType.toLowerCase() : s.fileType;
  if (!FILE_TYPES.includes(fileType as FileType)) throw new ApiError('E18614', `spec.fileType must be one of ${FILE_TYPES.join(', ')}`);
  const strings = (v: unknown, what: string): string[] => {
    if (v === undefined || v === null) return [];
    const arr = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(arr) || !arr.every((x) => typeof x === 'string')) throw new ApiError('E18614', `spec.${what} must be a string or an array of strings`);
    if (arr.length > 100) throw new ApiError('E18614', `spec.${what}: at most 100 entries`);
    return arr as string[];
  };
  const spec: SourceSpec = { type: t, prefixes: [], fileType: fileType as FileType };
  if (t === 'kodo') {
    spec.bucket = typeof s.bucket === 'string' ? s.bucket : undefined;
    spec.prefixes = strings(s.keyPrefixes ?? s.keyPrefix, 'keyPrefixes');
  } else {
    spec.prefixes = strings(s.paths ?? s.path, 'paths');
    if (spec.prefixes.length === 0) throw new ApiError('E18614', 'spec.paths: at least one hdfs path is needed');
  }
  if (fileType === 'csv') {
    if (s.delimiter !== undefined && (typeof s.delimiter !== 'string' || s.delimiter.length === 0 || s.delimiter.length > 2)) {
      throw new ApiError('E18614', 'spec.delimiter must be one character (or \\t)');
    }
    if (s.containsHeader !== undefined && typeof s.containsHeader !== 'boolean') throw new ApiError('E18614', 'spec.containsHeader must be a boolean');
    spec.delimiter = (s.delimiter as string | undefined) ?? ',';
    spec.containsHeader = (s.containsHeader as boolean | undefined) ?? false;
  }
  return spec;
}

/** `message` (a reader's error) with the server paths of `files` replaced by how users know them (kodo://bucket/key, hdfs:///path). */
export function showPaths(message: string, files: SourceFile[]): string {
  let m = message;
  // Longest first, so a path that starts another one (a.json, a.json.gz) does not cut it.
  for (const f of [...files].sort((a, b) => b.file.length - a.file.length)) {
    if (m.includes(f.file)) m = m.split(f.file).join(f.shown);
  }
  return m;
}

/** Short name of a file for messages. */
export const baseName = (f: string): string => path.basename(f);
