/**
 * A line file being written on local disk before it is published: lines go
 * straight to a spool file (through gzip when compressing), so an open
 * file costs disk, not memory, however large rotateSize is.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export class LineSpool {
  private readonly file: WriteStream;
  private readonly out: Writable;
  private failure: Error | undefined;
  /** Whether any line was written (lines are joined by '\n'). */
  private started = false;

  constructor(readonly path: string, gzip: boolean) {
    this.file = createWriteStream(path, { flags: 'wx', mode: 0o644 });
    this.file.on('error', (err) => (this.failure ??= err));
    if (gzip) {
      const z = createGzip({ level: 6 });
      z.on('error', (err) => (this.failure ??= err));
      z.pipe(this.file);
      this.out = z;
    } else {
      this.out = this.file;
    }
  }

  /** Writes lines (each without its newline), waiting while the disk is behind. */
  async write(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    if (this.failure) throw this.failure;
    const text = (this.started ? '\n' : '') + lines.join('\n');
    this.started = true;
    if (!this.out.write(text)) await once(this.out, 'drain');
    if (this.failure) throw this.failure;
  }

  /** Ends the file with a newline, flushes and fsyncs it. */
  async finish(): Promise<void> {
    if (this.started) this.out.write('\n');
    this.out.end();
    await finished(this.file);
    if (this.failure) throw this.failure;
    const fh = await open(this.path, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Stops writing and removes the spool file. Idempotent. */
  async abort(): Promise<void> {
    const closed = this.file.closed ? Promise.resolve() : new Promise<void>((r) => this.file.once('close', () => r()));
    this.out.destroy();
    this.file.destroy();
    // An open still in flight would create the file after the rm: wait for the stream to close first.
    await closed;
    await rm(this.path, { force: true });
  }
}
