/**
 * Buckets as local directories: bucket B is the folder `<root>/B`, an
 * object's key is its path inside it. Objects appear atomically (written to
 * a temp name in the target folder, fsynced, renamed, folder fsynced).
 * Keys stay inside their bucket: names are checked (keys.ts) and no folder
 * or file inside a bucket is followed through a symlink. The bucket folder
 * itself may be a symlink the operator placed (e.g. to another disk).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { checkObjectName, TEMP_PREFIX } from './keys.ts';
import { InvalidObjectKeyError, NoSuchKeyError, type ObjectInfo, type ObjectStore } from './types.ts';

const isCode = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException | null)?.code === code;

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class LocalObjectStore implements ObjectStore {
  readonly kind = 'local';

  constructor(private readonly root: string) {}

  async put(bucket: string, key: string, data: Uint8Array | string): Promise<void> {
    await this.publish(bucket, key, async (tmp) => {
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  async putFile(bucket: string, key: string, file: string, opts: { move?: boolean } = {}): Promise<void> {
    let moved = false;
    // A failed publish gives a moved file back, so the caller can try again.
    const undo = (tmp: string): Promise<void> => (moved ? rename(tmp, file) : rm(tmp, { force: true }));
    await this.publish(bucket, key, async (tmp) => {
      // A move on the same file system skips copying the bytes; across file systems (EXDEV) it copies.
      moved = opts.move === true && (await rename(file, tmp).then(() => true, (err: unknown) => {
        if (isCode(err, 'EXDEV')) return false;
        throw err;
      }));
      if (!moved) await copyFile(file, tmp);
      const fh = await open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }, undo);
  }

  async get(bucket: string, key: string): Promise<Readable> {
    const file = await this.existingFile(bucket, key);
    // O_NOFOLLOW: a symlink swapped in after the check is refused by open itself.
    const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: unknown) => {
      if (isCode(err, 'ENOENT') || isCode(err, 'ELOOP')) throw new NoSuchKeyError(bucket, key);
      throw err;
    });
    return fh.createReadStream({ autoClose: true });
  }

  async *list(bucket: string, prefix = ''): AsyncIterable<ObjectInfo> {
    checkObjectName(bucket);
    const cut = prefix.lastIndexOf('/');
    const dirPart = cut < 0 ? '' : prefix.slice(0, cut);
    if (dirPart !== '') {
      try {
        checkObjectName(bucket, dirPart);
      } catch {
        return; // no object can have such a key
      }
    }
    const base = path.join(this.root, bucket);
    let dir: string;
    try {
      dir = await this.walkDirs(base, dirPart === '' ? [] : dirPart.split('/'), false);
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR') || err instanceof InvalidObjectKeyError) return;
      throw err;
    }
    yield* this.walk(dir, dirPart === '' ? '' : dirPart + '/', prefix);
  }

  async delete(bucket: string, keys: readonly string[]): Promise<void> {
    const base = path.join(this.root, bucket);
    for (const key of keys) {
      let file: string;
      try {
        file = await this.existingFile(bucket, key);
      } catch (err) {
        if (err instanceof NoSuchKeyError) continue;
        throw err;
      }
      await unlink(file).catch((err: unknown) => {
        if (!isCode(err, 'ENOENT')) throw err;
      });
      // Drop folders the delete left empty (date partitions after retention), up to the bucket.
      for (let dir = path.dirname(file); dir !== base && dir.startsWith(base + path.sep); dir = path.dirname(dir)) {
        try {
          await rmdir(dir);
        } catch {
          break;
        }
      }
    }
  }

  async bucketExists(bucket: string): Promise<boolean> {
    checkObjectName(bucket);
    try {
      return (await stat(path.join(this.root, bucket))).isDirectory();
    } catch (err) {
      if (isCode(err, 'ENOENT')) return false;
      throw err;
    }
  }

  async close(): Promise<void> {}

  /** Writes through `write` to a temp name beside the target, then renames it into place. */
  private async publish(bucket: string, key: string, write: (tmp: string) => Promise<void>, undo = (tmp: string): Promise<void> => rm(tmp, { force: true })): Promise<void> {
    checkObjectName(bucket, key);
    const segs = key.split('/');
    const name = segs.pop() as string;
    await mkdir(this.root, { recursive: true });
    const dir = await this.walkDirs(path.join(this.root, bucket), segs, true);
    const tmp = path.join(dir, `${TEMP_PREFIX}${randomBytes(6).toString('hex')}`);
    try {
      await write(tmp);
      const target = path.join(dir, name);
      const existing = await lstat(target).catch(() => undefined);
      if (existing?.isDirectory()) throw new InvalidObjectKeyError(`the object key "${key.slice(0, 80)}" names a folder that holds other objects`);
      await rename(tmp, target);
    } catch (err) {
      await undo(tmp).catch(() => rm(tmp, { force: true }));
      throw err;
    }
    await fsyncDir(dir);
  }

  /**
   * Resolves the folders `segs` below the bucket folder `base` one by one,
   * refusing symlinks and files in the way; creates missing ones when `create`.
   */
  private async walkDirs(base: string, segs: readonly string[], create: boolean): Promise<string> {
    if (create) await mkdir(base, { recursive: true });
    let dir = base;
    for (const seg of segs) {
      dir = path.join(dir, seg);
      let st = await lstat(dir).catch((err: unknown) => {
        if (create && isCode(err, 'ENOENT')) return undefined;
        throw err;
      });
      if (st === undefined) {
        await mkdir(dir).catch((err: unknown) => {
          if (!isCode(err, 'EEXIST')) throw err;
        });
        st = await lstat(dir);
      }
      if (st.isSymbolicLink()) throw new InvalidObjectKeyError(`"${seg}" inside the bucket is a symlink; the store does not follow links`);
      if (!st.isDirectory()) throw new InvalidObjectKeyError(`"${seg}" inside the bucket is a file, not a folder`);
    }
    return dir;
  }

  /** The path of an existing object file (not a symlink), or NoSuchKeyError. */
  private async existingFile(bucket: string, key: string): Promise<string> {
    checkObjectName(bucket, key);
    const segs = key.split('/');
    const name = segs.pop() as string;
    try {
      const dir = await this.walkDirs(path.join(this.root, bucket), segs, false);
      const file = path.join(dir, name);
      const st = await lstat(file);
      if (!st.isFile()) throw new NoSuchKeyError(bucket, key);
      return file;
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR') || err instanceof InvalidObjectKeyError) throw new NoSuchKeyError(bucket, key);
      throw err;
    }
  }

  /** Files below `dir` (whose key prefix is `keyBase`) starting with `prefix`, in key byte order. */
  private async *walk(dir: string, keyBase: string, prefix: string): AsyncIterable<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return;
      throw err;
    }
    // A folder sorts as "name/" so that keys come out in S3's byte order ("a-c" before "a/b").
    const sortName = (e: (typeof entries)[number]): string => (e.isDirectory() ? e.name + '/' : e.name);
    const items = entries
      .filter((e) => !e.name.startsWith(TEMP_PREFIX) && (e.isFile() || e.isDirectory()))
      .map((e) => ({ e, sort: Buffer.from(sortName(e)) }))
      .sort((a, b) => Buffer.compare(a.sort, b.sort));
    for (const { e } of items) {
      const key = keyBase + e.name;
      if (e.isDirectory()) {
        const sub = key + '/';
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) yield* this.walk(path.join(dir, e.name), sub, prefix);
      } else if (key.startsWith(prefix)) {
        const st = await stat(path.join(dir, e.name)).catch(() => undefined);
        if (st) yield { key, size: st.size, modified: st.mtimeMs };
      }
    }
  }
}
