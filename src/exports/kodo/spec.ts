/**
 * The kodo export spec (official-extensions 1.10 and the reference's
 * "导出数据至对象存储服务"): parsing, defaults and bounds. Validation
 * against the repo (#field references) and the bucket grants is in index.ts.
 */
import { ApiError } from '../../errors.ts';
import { bucketProblem, keyProblem } from '../../objectstore/index.ts';
import { evaluateBase, fileKey, unknownVariables } from './naming.ts';

export type KodoFormat = 'json' | 'text' | 'csv' | 'parquet';
export type RotateStrategy = 'interval' | 'size' | 'both';

export interface KodoSpec {
  bucket: string;
  keyPrefix: string;
  /** Output column -> "#field" (dotted for nested map fields); undefined = every field under its own name. */
  fields: Record<string, string> | undefined;
  format: KodoFormat;
  /** csv only. */
  delimiter: string;
  /** gzip json/text/csv; ignored for parquet. */
  compress: boolean;
  rotateStrategy: RotateStrategy;
  /** Seconds. */
  rotateInterval: number;
  /** Bytes. */
  rotateSize: number;
  /** Days; 0 = keep forever. */
  retention: number;
}

export const ROTATE_INTERVAL = { default: 30, min: 30, max: 600 };
export const ROTATE_SIZE = { default: 5 * 1024 * 1024, min: 1, max: 1024 * 1024 * 1024 };
const MAX_RETENTION_DAYS = 36500;
const MAX_PREFIX = 512;
const WIDEST_OFFSET = 999_999_999_999_999;
/** Output column names: what csv headers, json keys and parquet columns can all carry. */
const COLUMN_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
const FORMATS: readonly KodoFormat[] = ['json', 'text', 'csv', 'parquet'];
const STRATEGIES: readonly RotateStrategy[] = ['interval', 'size', 'both'];

/** Spec field problems are E18303 naming the field and the rule, as for every export kind (docs/exports.md). */
const bad = (msg: string): never => {
  throw new ApiError('E18303', msg);
};

/** An integer spec value (numbers, or digit strings as some clients send). */
function int(spec: Record<string, unknown>, key: string, dflt: number, min: number, max: number, what: string): number {
  const raw = spec[key];
  if (raw === undefined || raw === null || raw === '') return dflt;
  const v = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
  if (typeof v !== 'number' || !Number.isInteger(v)) return bad(`${key} must be an integer number of ${what}, got ${JSON.stringify(raw)?.slice(0, 40)}`);
  if (v < min || v > max) return bad(`${key} must be between ${min} and ${max} ${what}, got ${v}`);
  return v;
}

function str(spec: Record<string, unknown>, key: string): string | undefined {
  const v = spec[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') return bad(`${key} must be a string, got ${JSON.stringify(v)?.slice(0, 40)}`);
  return v;
}

function format(spec: Record<string, unknown>): KodoFormat {
  const f = (str(spec, 'format') ?? 'json').toLowerCase();
  if (f === '') return 'json';
  if (!(FORMATS as readonly string[]).includes(f)) return bad(`format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(spec.format)}`);
  return f as KodoFormat;
}

function keyPrefix(spec: Record<string, unknown>): string {
  const p = str(spec, 'keyPrefix') ?? '';
  if (p.length > MAX_PREFIX) bad(`keyPrefix must be at most ${MAX_PREFIX} characters`);
  const unknown = unknownVariables(p);
  if (unknown.length > 0) bad(`keyPrefix uses $(${unknown[0]}), which is not a magic variable (known: $(year) $(mon) $(day) $(hour) $(min) $(sec))`);
  // A sample key shows whether every key the prefix can produce is a valid object key.
  // The widest key: offsets of 15 digits (the log's limit) and the longest extension.
  const problem = keyProblem(fileKey(evaluateBase(p, Date.UTC(2017, 0, 12, 15, 30), 'UTC'), '00000000', WIDEST_OFFSET, WIDEST_OFFSET, 'json.gz'));
  if (problem) bad(`keyPrefix ${JSON.stringify(p).slice(0, 80)} does not make valid object keys: ${problem}`);
  return p;
}

function fields(spec: Record<string, unknown>): Record<string, string> | undefined {
  const f = spec.fields;
  if (f === undefined || f === null) return undefined;
  if (typeof f !== 'object' || Array.isArray(f)) return bad('fields must be an object mapping output columns to "#field" references');
  const entries = Object.entries(f as Record<string, unknown>);
  if (entries.length === 0) return undefined;
  for (const [col, ref] of entries) {
    if (!COLUMN_RE.test(col)) bad(`fields: output column ${JSON.stringify(col).slice(0, 80)} must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or '_'`);
    if (typeof ref !== 'string') bad(`fields.${col} must be a "#field" reference, got ${JSON.stringify(ref)?.slice(0, 40)}`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function delimiter(spec: Record<string, unknown>, fmt: KodoFormat): string {
  const d = str(spec, 'delimiter');
  if (fmt !== 'csv') return d ?? ',';
  if (d === undefined || d === '') return bad('format csv needs a delimiter (e.g. "," or "\\t")');
  if (d.length > 8 || /["\r\n]/.test(d)) return bad(`delimiter must be 1-8 characters without '"' or line breaks, got ${JSON.stringify(d).slice(0, 40)}`);
  return d;
}

function bool(spec: Record<string, unknown>, key: string): boolean {
  const v = spec[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') return bad(`${key} must be true or false, got ${JSON.stringify(v)?.slice(0, 40)}`);
  return v;
}

/**
 * Parses a kodo spec: ApiError E18303 naming the field and the rule for
 * any bad value. Unknown fields (the SDK sends rotateSizeType,
 * rotateNumber, kodo_file_type, exportZone, ...) are ignored.
 */
export function parseKodoSpec(spec: Record<string, unknown>): KodoSpec {
  const bucket = str(spec, 'bucket');
  if (!bucket) bad('bucket is required');
  const badBucket = bucketProblem(bucket as string);
  if (badBucket) bad(badBucket);
  for (const k of ['email', 'accessKey']) str(spec, k);
  const fmt = format(spec);
  const strategy = (str(spec, 'rotateStrategy') || 'interval').toLowerCase();
  if (!(STRATEGIES as readonly string[]).includes(strategy)) bad(`rotateStrategy must be one of ${STRATEGIES.join(', ')}, got ${JSON.stringify(spec.rotateStrategy)}`);
  const retention = int(spec, 'retention', 0, Number.MIN_SAFE_INTEGER, MAX_RETENTION_DAYS, 'days');
  return {
    bucket: bucket as string,
    keyPrefix: keyPrefix(spec),
    fields: fields(spec),
    format: fmt,
    delimiter: delimiter(spec, fmt),
    compress: bool(spec, 'compress'),
    rotateStrategy: strategy as RotateStrategy,
    rotateInterval: int(spec, 'rotateInterval', ROTATE_INTERVAL.default, ROTATE_INTERVAL.min, ROTATE_INTERVAL.max, 'seconds'),
    rotateSize: int(spec, 'rotateSize', ROTATE_SIZE.default, ROTATE_SIZE.min, ROTATE_SIZE.max, 'bytes'),
    retention: Math.max(0, retention),
  };
}

/** The file name extension of a spec's files. */
export function fileExtension(spec: Pick<KodoSpec, 'format' | 'compress'>): string {
  if (spec.format === 'parquet') return 'parquet';
  const ext = spec.format === 'text' ? 'txt' : spec.format;
  return spec.compress ? `${ext}.gz` : ext;
}
