/**
 * Kodo datasources on an S3-compatible bucket store: the objects a source
 * matches are listed through the ObjectStore, the matched ones downloaded
 * into a folder private to the run (bounded by offlineFetchMax), and DuckDB
 * reads those local copies exactly as it reads local bucket files, inside
 * the same sandbox. With local bucket folders nothing is copied.
 *
 * Job exports on S3 publish with markers (see s3export.ts): `_PENDING`
 * while a run uploads, `_SUCCESS` (a JSON manifest of the run's keys) last.
 * Readers here honour them: below a folder holding a marker only the keys
 * its manifest lists are read, so a reader never sees half a run's files.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import type { AccountConfig, Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { bucketProblem, NoSuchBucketError, NoSuchKeyError, objectStoreFor, type ObjectStore } from '../objectstore/index.ts';
import { checkRelative, MAX_FILES } from './paths.ts';
import { matchFiles, type SourceFile, type SourceSpec } from './sources.ts';

/** Written by an S3 job export before its first upload; removed after its manifest. */
export const PENDING_MARKER = '_PENDING';
/** Written by an S3 job export after every data file: `{runId, tag, job, export, written, keys}` with keys relative to its folder. */
export const SUCCESS_MARKER = '_SUCCESS';

/** Downloads at once per run. */
const FETCH_PARALLEL = 4;

/** A matched object, before download. */
interface RemoteFile {
  key: string;
  size: number;
  shown: string;
}

/** Whether kodo sources live on S3 (else in local bucket folders, read in place). */
export const onS3 = (config: Config): boolean => objectStoreFor(config).kind === 's3';

/**
 * Checks that the account may read `bucket` and that it exists: E18665
 * outside the account's grants, E18614 for a name S3 refuses, E18619 when
 * the endpoint has no such bucket.
 */
export async function checkS3Bucket(config: Config, account: AccountConfig, bucket: string): Promise<void> {
  if (account.buckets && !account.buckets.includes(bucket)) {
    throw new ApiError('E18665', `bucket "${bucket}" is not granted to this account (granted: ${account.buckets.join(', ') || 'none'})`);
  }
  const bad = bucketProblem(bucket);
  if (bad) throw new ApiError('E18614', bad);
  if (!(await objectStoreFor(config).bucketExists(bucket))) throw new ApiError('E18619', `bucket "${bucket}" does not exist at the S3 endpoint ${config.s3.endpoint}`);
}

/** Regex source for a key pattern: literal text, `*` = any characters except '/' (as paths.ts). */
const patternSource = (pattern: string): string => pattern.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*');
const hidden = (seg: string): boolean => seg.startsWith('.') || seg.startsWith('_');

/** The keys a `_SUCCESS` manifest lists (absolute), or undefined when it is not one of ours (e.g. Hadoop's empty marker). */
async function manifestKeys(store: ObjectStore, bucket: string, folder: string): Promise<Set<string> | undefined> {
  try {
    const body = JSON.parse(await text(await store.get(bucket, folder + SUCCESS_MARKER))) as { keys?: unknown };
    if (!Array.isArray(body.keys)) return undefined;
    return new Set(body.keys.filter((k): k is string => typeof k === 'string').map((k) => folder + k));
  } catch (err) {
    if (err instanceof NoSuchKeyError || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/**
 * Objects matching `pattern` (prefix + file filter, `*` within a segment),
 * hidden names skipped, filtered by the markers of job exports.
 */
async function listMatching(store: ObjectStore, bucket: string, pattern: string): Promise<RemoteFile[]> {
  checkRelative(pattern, 'file pattern');
  const star = pattern.indexOf('*');
  const literal = star < 0 ? pattern : pattern.slice(0, star);
  const re = new RegExp('^' + patternSource(pattern));
  // Folder ('' = bucket root, else ending in '/') -> which markers it holds.
  const markers = new Map<string, { success: boolean; pending: boolean }>();
  const mark = (key: string): void => {
    const cut = key.lastIndexOf('/') + 1;
    const name = key.slice(cut);
    if (name !== SUCCESS_MARKER && name !== PENDING_MARKER) return;
    const m = markers.get(key.slice(0, cut)) ?? { success: false, pending: false };
    if (name === SUCCESS_MARKER) m.success = true;
    else m.pending = true;
    markers.set(key.slice(0, cut), m);
  };
  const matched: RemoteFile[] = [];
  try {
    for await (const o of store.list(bucket, literal)) {
      mark(o.key);
      if (!re.test(o.key) || o.key.split('/').some(hidden)) continue;
      if (matched.length >= MAX_FILES) throw new ApiError('E18620', `more than ${MAX_FILES} objects match "${pattern}"; narrow the prefix or file filter`);
      matched.push({ key: o.key, size: o.size, shown: `kodo://${bucket}/${o.key}` });
    }
    // Folders above the listed prefix may hold markers too: one small listing per level.
    const segs = literal.split('/').slice(0, -1);
    for (let i = 0; i <= segs.length; i++) {
      const folder = segs.slice(0, i).map((s) => s + '/').join('');
      if ((folder + SUCCESS_MARKER).startsWith(literal)) continue; // already in the listing
      for (const name of [SUCCESS_MARKER, PENDING_MARKER]) {
        for await (const o of store.list(bucket, folder + name)) if (o.key === folder + name) mark(o.key);
      }
    }
  } catch (err) {
    if (err instanceof NoSuchBucketError) throw new ApiError('E18619', `bucket "${bucket}" does not exist`);
    throw err;
  }
  if (markers.size === 0) return matched;
  const manifests = new Map<string, Set<string> | undefined>();
  for (const [folder, m] of markers) if (m.success) manifests.set(folder, await manifestKeys(store, bucket, folder));
  return matched.filter((f) => {
    // The deepest marked folder above the key decides.
    let folder = f.key;
    for (;;) {
      const cut = folder.lastIndexOf('/', folder.length - 2);
      folder = cut < 0 ? '' : folder.slice(0, cut + 1);
      const m = markers.get(folder);
      if (m) {
        if (!m.success) return false; // a first run still uploading
        const keys = manifests.get(folder);
        return keys === undefined || keys.has(f.key);
      }
      if (folder === '') return true;
    }
  });
}

/** Per-run download area and its byte budget (offlineFetchMax). */
export class FetchArea {
  readonly dir: string;
  private used = 0;
  private seq = 0;
  private made = false;

  constructor(tmpDir: string, readonly limit: number) {
    this.dir = path.join(tmpDir, `fetch-${randomUUID()}`);
  }

  /** Reserves `bytes` of the budget; E18666 naming the limit when they do not fit. */
  reserve(bytes: number, what: string): void {
    if (this.used + bytes > this.limit) {
      throw new ApiError('E18666', `${what} hold ${bytes} bytes; with the ${this.used} bytes already fetched for this run that exceeds offlineFetchMax (${this.limit} bytes): narrow the prefix or file filter, or raise PIPELINE_OFFLINE_FETCH_MAX`);
    }
    this.used += bytes;
  }

  /** A fresh local name for a download, keeping the key's extensions (DuckDB detects .gz by name). */
  nameFor(key: string): string {
    const base = key.slice(key.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9._=-]/g, '_').slice(-100);
    return path.join(this.dir, `${String(this.seq++).padStart(6, '0')}-${base}`);
  }

  /** Creates the folder before the first download. */
  async prepare(): Promise<void> {
    if (this.made) return;
    this.made = true;
    await mkdir(this.dir, { recursive: true });
  }

  /** Removes the folder and every download in it; nothing to do for a run that fetched nothing. */
  async close(): Promise<void> {
    if (this.made) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Downloads `objs` into the fetch area; a download that grows past its listed size is cut off. */
async function download(store: ObjectStore, bucket: string, objs: RemoteFile[], area: FetchArea): Promise<SourceFile[]> {
  area.reserve(objs.reduce((n, o) => n + o.size, 0), `the ${objs.length} object(s) matching in bucket "${bucket}"`);
  await area.prepare();
  const out: SourceFile[] = objs.map((o) => ({ file: area.nameFor(o.key), shown: o.shown, size: o.size }));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < objs.length; i = next++) {
      const o = objs[i] as RemoteFile;
      let seen = 0;
      const bound = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          seen += chunk.length;
          cb(seen > o.size ? new ApiError('E18666', `${o.shown} grew beyond its listed ${o.size} bytes while it was fetched`) : null, chunk);
        },
      });
      try {
        await pipeline(await store.get(bucket, o.key), bound, createWriteStream((out[i] as SourceFile).file, { flags: 'wx', mode: 0o600 }));
      } catch (err) {
        if (err instanceof NoSuchKeyError) throw new ApiError('E18620', `${o.shown} was removed while it was being read (an overwriting export?); run again`);
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(FETCH_PARALLEL, objs.length) }, worker));
  return out;
}

/**
 * The local files of a source: in place for hdfs and local buckets, else
 * the first `limit` matching S3 objects downloaded into `area`.
 */
export async function sourceFiles(config: Config, account: AccountConfig, spec: SourceSpec, filter: string, area: FetchArea, limit = Infinity): Promise<SourceFile[]> {
  if (spec.type !== 'kodo' || !onS3(config)) return matchFiles(config, account, spec, filter).slice(0, limit);
  const bucket = spec.bucket ?? '';
  await checkS3Bucket(config, account, bucket);
  const store = objectStoreFor(config);
  const seen = new Set<string>();
  const objs: RemoteFile[] = [];
  for (const prefix of spec.prefixes.length ? spec.prefixes : ['']) {
    for (const o of await listMatching(store, bucket, prefix + filter)) {
      if (seen.has(o.key)) continue;
      seen.add(o.key);
      objs.push(o);
    }
  }
  return download(store, bucket, objs.slice(0, limit), area);
}
