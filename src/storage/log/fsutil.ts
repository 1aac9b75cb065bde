/** Small file-system helpers shared by the log modules. */
import { closeSync, fsyncSync, openSync, writev, writevSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { fdatasyncOnThread, fsyncDirOnThread } from './sync-thread.ts';

/**
 * fdatasync off the event loop, on dedicated sync threads rather than Node's
 * thread pool, which DuckDB queries can fill (sync-thread.ts).
 */
export const fdatasyncAsync: (fd: number) => Promise<void> = fdatasyncOnThread;

/**
 * fsyncs a directory so that file creations and deletions inside it survive
 * a power loss (POSIX only guarantees this after the directory is synced).
 */
export async function fsyncDir(dir: string): Promise<void> {
  await fsyncDirOnThread(dir);
}

/** Blocking variant of {@link fsyncDir}, for the rare paths that must finish before returning. */
export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes all of `buffers` at `position`; writev may write less than asked
 * (e.g. a signal or a full disk), so the rest is retried until done or it throws.
 */
export function writeAllSync(fd: number, buffers: Buffer[], position: number): void {
  let pending = buffers;
  let at = position;
  for (;;) {
    let written = writevSync(fd, pending, at);
    at += written;
    let i = 0;
    while (i < pending.length && written >= pending[i]!.length) {
      written -= pending[i]!.length;
      i++;
    }
    if (i === pending.length) return;
    pending = [pending[i]!.subarray(written), ...pending.slice(i + 1)];
  }
}

const writevAsync = promisify(writev);

/** {@link writeAllSync} on the libuv thread pool, for writes large enough to stall the event loop. */
export async function writeAll(fd: number, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  for (;;) {
    let { bytesWritten: written } = await writevAsync(fd, pending, at);
    at += written;
    let i = 0;
    while (i < pending.length && written >= pending[i]!.length) {
      written -= pending[i]!.length;
      i++;
    }
    if (i === pending.length) return;
    pending = [pending[i]!.subarray(written), ...pending.slice(i + 1)];
  }
}

/** Reads exactly buf.length bytes at `position`; a short file is an error the caller handles. */
export async function readFully(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new RangeError(`unexpected end of file at ${position + done}`);
    done += bytesRead;
  }
}
