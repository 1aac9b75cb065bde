/**
 * Bucket name and object key rules, shared by both stores so a key that
 * works locally works on S3 and the reverse.
 */
import { InvalidObjectKeyError } from './types.ts';

/** S3's bucket naming rules, with upper case allowed (Qiniu bucket names may carry it). */
const BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9.-]{1,61}[A-Za-z0-9]$/;

/** Prefix of the names of files being written; listing skips them and keys may not use it. */
export const TEMP_PREFIX = '.pipeline-tmp-';

/** Longest key in UTF-8 bytes (S3's limit). */
export const MAX_KEY_BYTES = 1024;
/** Longest key segment in UTF-8 bytes (a file or folder name in a folder bucket: NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;

/** Why `bucket` is not a valid bucket name, or undefined when it is. */
export function bucketProblem(bucket: string): string | undefined {
  if (!BUCKET_RE.test(bucket) || bucket.includes('..')) {
    return `bucket "${bucket.slice(0, 80)}" is not a valid bucket name (3-63 letters, digits, '.' and '-', starting and ending with a letter or digit)`;
  }
  return undefined;
}

/**
 * Why `key` is not a valid object key, or undefined. Keys are relative
 * '/'-separated paths: no leading '/', no empty, '.' or '..' segment, no
 * backslash or control character, at most 1024 UTF-8 bytes, segments of at
 * most 255 bytes (the file name limit of folder buckets), and no segment
 * starting with the temp prefix. A trailing '/' is refused too: it would
 * name a folder, not an object.
 */
export function keyProblem(key: string): string | undefined {
  if (key === '') return 'the object key is empty';
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return `the object key is longer than ${MAX_KEY_BYTES} bytes`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(key)) return `the object key "${key.slice(0, 80)}" contains a control character or a backslash`;
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return `the object key "${key.slice(0, 80)}" has an empty, "." or ".." path segment (or starts or ends with "/")`;
    if (Buffer.byteLength(seg) > MAX_SEGMENT_BYTES) return `the object key "${key.slice(0, 80)}" has a path segment longer than ${MAX_SEGMENT_BYTES} bytes`;
    if (seg.startsWith(TEMP_PREFIX)) return `the object key "${key.slice(0, 80)}" uses the reserved name prefix "${TEMP_PREFIX}"`;
  }
  return undefined;
}

/** Throws InvalidObjectKeyError unless bucket and key are valid. */
export function checkObjectName(bucket: string, key?: string): void {
  const problem = bucketProblem(bucket) ?? (key === undefined ? undefined : keyProblem(key));
  if (problem) throw new InvalidObjectKeyError(problem);
}
