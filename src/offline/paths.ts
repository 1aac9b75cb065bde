/**
 * Where offline files live and who may touch them: buckets are folders of
 * the bucket store (bucket B = <bucketsDir>/B), hdfs paths are folders under
 * the hdfs root. Nothing resolves outside its root: `..` segments, absolute
 * keys and backslashes are refused, symlinks are never followed, and the
 * per-account grants (AccountConfig.buckets / hdfsPaths) are checked first.
 */
import { existsSync, lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { AccountConfig, Config } from '../config.ts';
import { ApiError } from '../errors.ts';

/** Most files one source may match; beyond it the run fails rather than listing forever. */
export const MAX_FILES = 100_000;

const BUCKET_RE = /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,62}$/;

/** Checks a bucket name (3-63 letters, digits, `-`, `_`). */
export function checkBucketName(bucket: unknown, code: 'E18614' | 'E18651' = 'E18614'): string {
  if (typeof bucket !== 'string' || !BUCKET_RE.test(bucket)) throw new ApiError(code, `bucket "${String(bucket).slice(0, 80)}" must be 3-63 letters, digits, '-' or '_'`);
  return bucket;
}

/** Checks a relative key or path: no `..`, no `\ < > :`, no leading `/`, at most 1024 chars. Returns it with '/' separators. */
export function checkKey(key: string, what: string): string {
  if (key.length > 1024) throw new ApiError('E18638', `${what} is longer than 1024 characters`);
  if (/[\\<>:\0]/.test(key)) throw new ApiError('E18638', `${what} "${key.slice(0, 80)}" contains one of \\ < > :`);
  if (key.startsWith('/')) throw new ApiError('E18638', `${what} "${key.slice(0, 80)}" must be relative (no leading /)`);
  if (key.split('/').some((seg) => seg === '..' || seg === '.')) throw new ApiError('E18638', `${what} "${key.slice(0, 80)}" may not contain . or .. segments`);
  return key;
}

/** Refuses a relative path that could leave its root (`.`/`..` segments, leading `/`, `\`, NUL); E18638. */
export function checkRelative(key: string, what: string): string {
  if (key.startsWith('/') || /[\\\0]/.test(key) || key.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new ApiError('E18638', `${what} "${key.slice(0, 80)}" must stay below its root (no leading /, no . or .. segments, no \\)`);
  }
  return key;
}

/**
 * Refuses (E18638) a relative path whose existing folders or file under
 * `root` include a symbolic link: writing or cleaning up through one would
 * leave the root.
 */
export function checkNoLink(root: string, rel: string, what: string): void {
  let cur = root;
  for (const seg of rel.split('/').filter((x) => x !== '')) {
    cur = path.join(cur, seg);
    let st;
    try {
      st = lstatSync(cur);
    } catch {
      return; // not there yet: created as a plain folder
    }
    if (st.isSymbolicLink()) throw new ApiError('E18638', `${what} "${rel.slice(0, 80)}" passes through a symbolic link (${path.relative(root, cur)}), which could lead out of its root`);
  }
}

/** The relative path of `hdfs://host:port/p`, `/p` or `p` under the hdfs root. */
export function hdfsRelative(url: string): string {
  const m = /^hdfs:\/\/[^/]*(\/.*)?$/i.exec(url);
  const p = m ? (m[1] ?? '') : url;
  if (/[\\<>\0]/.test(p) || p.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new ApiError('E18638', `hdfs path "${url.slice(0, 80)}" may not contain .. or . segments or \\ < >`);
  }
  return p.replace(/^\/+/, '');
}

/** Whether `rel` (a path under a root) is inside one of `grants` (subtrees, '' or '/' = all). */
function within(rel: string, grants: string[]): boolean {
  return grants.some((g) => {
    const base = g.replace(/^\/+|\/+$/g, '');
    return base === '' || rel === base || rel.startsWith(base + '/');
  });
}

/** The directory of a bucket the account may use; E18665 when not granted, E18619 when missing (unless `create`). */
export function bucketRoot(config: Config, account: AccountConfig, bucket: string, opts: { create?: boolean } = {}): string {
  if (account.buckets && !account.buckets.includes(bucket)) {
    throw new ApiError('E18665', `bucket "${bucket}" is not granted to this account (granted: ${account.buckets.join(', ') || 'none'})`);
  }
  const dir = path.join(config.bucketsDir, bucket);
  if (!opts.create) {
    let st;
    try {
      st = lstatSync(dir);
    } catch {
      throw new ApiError('E18619', `bucket "${bucket}" does not exist`);
    }
    if (!st.isDirectory()) throw new ApiError('E18619', `bucket "${bucket}" is not a folder of the bucket store`);
  }
  return dir;
}

/** Checks that the account may use the hdfs subtree `rel`; E18665 when it is outside its grants. */
export function checkHdfsGrant(account: AccountConfig, rel: string, shown: string): void {
  if (account.hdfsPaths && !within(rel, account.hdfsPaths)) {
    throw new ApiError('E18665', `hdfs path "${shown}" is outside the paths granted to this account (${account.hdfsPaths.join(', ') || 'none'})`);
  }
}

/** Regex source for a key pattern: literal text, `*` = any characters except '/'. */
function patternSource(pattern: string): string {
  return pattern.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*');
}

/** Hidden (.x) and marker (_x) names are skipped, like Hadoop's readers; job exports stage under .tmp-*. */
const hidden = (name: string): boolean => name.startsWith('.') || name.startsWith('_');

/**
 * Files under `root` whose key (relative path with '/') starts with
 * `pattern` (`*` matches within one path segment). Walks from the deepest
 * literal folder of the pattern; never follows symlinks. Sorted by key.
 */
export function listFiles(root: string, pattern: string): Array<{ key: string; file: string; size: number }> {
  // Patterns come from expanded magic variables too: never let one climb out of the root.
  checkRelative(pattern, 'file pattern');
  const star = pattern.indexOf('*');
  const literal = star < 0 ? pattern : pattern.slice(0, star);
  const baseRel = literal.includes('/') ? literal.slice(0, literal.lastIndexOf('/')) : '';
  const re = new RegExp('^' + patternSource(pattern));
  const out: Array<{ key: string; file: string; size: number }> = [];
  if (!existsSync(root)) return out;
  const rootReal = realpathSync.native(root);
  const walk = (rel: string): void => {
    const dir = rel ? path.join(rootReal, rel) : rootReal;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (hidden(e.name) || e.isSymbolicLink()) continue;
      const key = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        // Descend only where the pattern can still match below this folder.
        const probe = key + '/';
        if (literal.startsWith(probe) || probe.startsWith(literal)) walk(key);
      } else if (e.isFile() && re.test(key)) {
        if (out.length >= MAX_FILES) throw new ApiError('E18620', `more than ${MAX_FILES} files match "${pattern}"; narrow the prefix or file filter`);
        out.push({ key, file: path.join(dir, e.name), size: statSync(path.join(dir, e.name)).size });
      }
    }
  };
  // The starting folder is reached by a path join: refuse it when a symlink on the way leads elsewhere.
  if (baseRel) {
    try {
      const real = realpathSync.native(path.join(rootReal, baseRel));
      if (real !== path.join(rootReal, baseRel)) return out;
    } catch {
      return out;
    }
  }
  walk(baseRel);
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Whether `rel` names a folder under root (used to treat an hdfs path as "everything below it"). */
export function isFolder(root: string, rel: string): boolean {
  try {
    return rel !== '' && lstatSync(path.join(root, rel)).isDirectory();
  } catch {
    return false;
  }
}
