/**
 * The kodo sink: collects records into files (json, text, csv, parquet),
 * closes a file by size or interval, publishes it atomically to the bucket
 * and only then acknowledges its offsets (see shared/sink.ts).
 *
 * Redelivery: after a crash the engine re-reads from the committed offset,
 * which is where the first unacknowledged file started. The file's key is
 * derived from its first record's offset and append time, so the sink
 * computes the same key stem again; when an object with that stem exists
 * (a previous run published it but died before the commit) the sink ends
 * the new file at the same last offset, rewriting the same object with the
 * same records instead of publishing an overlapping one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { decodeColumns } from '../../ingest/points.ts';
import { NoSuchBucketError, objectStoreFor, bucketRefusal, type ObjectStore } from '../../objectstore/index.ts';
import { RetryableSinkError, type DeliveryResult, type ExportBatch, type PreviewResult, type Sink, type SinkContext } from '../shared/sink.ts';
import { columnValues, outColumns, type OutColumn } from './columns.ts';
import { csvHeader, rowEncoder, type RowEncoder } from './encode.ts';
import { evaluateBase, exportTag, fileKey, isExportFile, keyStem, lastOffsetOf, staticPart } from './naming.ts';
import { fusedLoader, type FusedLoader } from './fused.ts';
import { ParquetEngine, parquetTypes, type ParquetTable } from './parquet.ts';
import { fileExtension, type KodoSpec } from './spec.ts';
import { LineSpool } from './spool.ts';

/** A `size` strategy file still closes after this long, so low-volume data appears (the reference's largest interval). */
const SIZE_ONLY_MAX_AGE_MS = 600_000;
/** Retention sweeps at most this often. */
const RETENTION_EVERY_MS = 3600_000;
/** Lines shown by preview. */
const PREVIEW_LINES = 10;

interface OpenFile {
  first: number;
  /** Offset after the last record in the file. */
  next: number;
  /** Bytes written (uncompressed; for parquet the size of the source records). */
  bytes: number;
  openedAt: number;
  key: (last: number) => string;
  /** Set when a previous run already published a file starting here: end exactly at this offset. */
  forcedLast: number | undefined;
  spool: string;
  lines?: LineSpool;
  table?: ParquetTable;
}

/** The spool folder of a server's kodo files (local temp space, also DuckDB's allowed directory). */
export function spoolDir(config: SinkContext['config']): string {
  return path.join(config.dataDir, 'tmp', 'kodo');
}

const spoolReady = new Map<string, Promise<void>>();

/**
 * Creates the spool folder. The first use in a process removes the files a
 * crashed run left there: none of them is in use, since this process has
 * not opened a file yet, and their records are re-read from the log.
 */
function prepareSpool(root: string): Promise<void> {
  let ready = spoolReady.get(root);
  if (!ready) {
    ready = (async () => {
      await mkdir(root, { recursive: true });
      for (const e of await readdir(root, { withFileTypes: true })) {
        if (e.isFile()) await rm(path.join(root, e.name), { force: true });
      }
    })();
    ready.catch(() => spoolReady.delete(root));
    spoolReady.set(root, ready);
  }
  return ready;
}

/**
 * Which parquet path new sinks take: the fused loader from stored lines
 * (the default, when the columns allow it) or decodeColumns + appendRows.
 * Switched off only by the bench that compares the two.
 */
export const parquetPaths = { fused: true };

export class KodoSink implements Sink {
  private readonly store: ObjectStore;
  private readonly cols: OutColumn[];
  private readonly encode: RowEncoder | undefined;
  private readonly ext: string;
  private readonly tag: string;
  /** For parquet: the loader from stored lines straight into DuckDB, when every column allows it (fused.ts). */
  private readonly fused: FusedLoader | undefined;
  /** The parquet writer, started by the first parquet file (a preview never needs it). */
  private parquet: ParquetEngine | undefined;
  private readonly spoolRoot: string;
  private file: OpenFile | undefined;
  /** A finished file waiting to be published (its publish failed). */
  private pending: { key: string; spool: string; next: number } | undefined;
  /** Offset after the last published record; undefined before the first batch. */
  private acked: number | undefined;
  /** Offset after the last record taken (in a file or published). */
  private taken: number | undefined;
  /** Whether new files still look for an object a previous run published (until the first miss). */
  private recovering = true;
  private lastSweep = Number.NEGATIVE_INFINITY;
  /** Why the sink cannot go on until it is rebuilt (see closeFile). */
  private stalled: string | undefined;
  private closed = false;

  constructor(private readonly spec: KodoSpec, private readonly ctx: SinkContext) {
    this.store = objectStoreFor(ctx.config);
    this.cols = outColumns(ctx.repo.schema, spec.fields);
    this.ext = fileExtension(spec);
    this.tag = exportTag(ctx.account, ctx.repo, ctx.exportName);
    this.spoolRoot = spoolDir(ctx.config);
    this.fused = spec.format === 'parquet' && parquetPaths.fused ? fusedLoader(this.cols, ctx.schema) : undefined;
    if (spec.format !== 'parquet') this.encode = rowEncoder(spec.format, this.cols, spec.delimiter, spec.format === 'text' && spec.fields === undefined);
  }

  async deliver(batch: ExportBatch, signal: AbortSignal): Promise<DeliveryResult> {
    if (this.closed) throw new RetryableSinkError('the kodo sink is closed');
    if (this.stalled) throw new RetryableSinkError(this.stalled);
    this.acked ??= batch.from;
    await this.publishPending();
    if (this.file && batch.from < this.file.first) await this.discardFile();
    if (!this.file && this.taken !== undefined && batch.from < this.acked) this.taken = this.acked;
    const skip = this.taken === undefined ? 0 : Math.max(0, this.taken - batch.from);
    if (this.file && this.intervalDue(this.file)) await this.closeFile();
    const count = batch.lines.length - skip;
    if (count <= 0) return { ackedThrough: this.acked, rejected: [] };
    const vals = this.fused === undefined ? this.decode(batch, skip, count) : [];
    const sizes = this.rowSizes(batch, skip, count, vals);
    let row = 0;
    while (row < count) {
      signal.throwIfAborted();
      const offset = batch.from + skip + row;
      if (this.file?.forcedLast !== undefined && this.file.forcedLast < offset) await this.closeFile();
      this.file ??= await this.openFile(offset, batch.times[skip + row] ?? this.ctx.now());
      const f = this.file;
      let n = 0;
      let full = false;
      // A file takes at least one record (a csv header alone may exceed a tiny rotateSize).
      while (row + n < count) {
        const at = offset + n;
        if (f.forcedLast !== undefined && at > f.forcedLast) break;
        f.bytes += sizes.rows[row + n]!;
        n++;
        if (f.forcedLast === at || (f.forcedLast === undefined && this.spec.rotateStrategy !== 'interval' && f.bytes >= this.spec.rotateSize)) {
          full = true;
          break;
        }
      }
      await this.write(f, vals, sizes.lines, row, n, batch.lines, skip);
      f.next = offset + n;
      this.taken = f.next;
      row += n;
      if (full) await this.closeFile();
    }
    if (!this.file && !this.pending) this.acked = this.taken ?? this.acked;
    return { ackedThrough: this.acked, rejected: [] };
  }

  async tick(_signal?: AbortSignal): Promise<number | undefined> {
    if (this.closed || this.stalled) return this.acked;
    await this.publishPending();
    if (this.file && this.intervalDue(this.file)) await this.closeFile();
    await this.sweep();
    return this.acked;
  }

  async preview(batch: ExportBatch): Promise<PreviewResult> {
    const n = batch.lines.length;
    const key = n === 0 ? undefined : fileKey(this.base(batch.times[0] ?? this.ctx.now()), this.tag, batch.from, batch.from + n - 1, this.ext);
    const shown = Math.min(n, PREVIEW_LINES);
    const vals = this.decode(batch, 0, shown);
    const rendered: Record<string, unknown> = { bucket: this.spec.bucket, key, format: this.spec.format, compress: this.spec.format !== 'parquet' && this.spec.compress };
    if (this.encode) {
      const lines: string[] = this.spec.format === 'csv' ? [csvHeader(this.cols, this.spec.delimiter)] : [];
      this.encode(vals, batch.lines, 0, shown, lines);
      rendered.lines = lines;
    } else {
      // Parquet is binary: the preview shows its column types and the rows as JSON lines.
      const lines: string[] = [];
      rowEncoder('json', this.cols, ',', false)(vals, batch.lines, 0, shown, lines);
      rendered.columns = parquetTypes(this.cols.map((c) => c.field));
      rendered.lines = lines;
    }
    return { rendered, rejected: [] };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.discardFile();
    if (this.pending) await rm(this.pending.spool, { force: true });
    this.pending = undefined;
    await this.parquet?.release();
  }

  /** The key base of a file whose first record was appended at `ms`. */
  private base(ms: number): string {
    return evaluateBase(this.spec.keyPrefix, ms, this.ctx.config.timezone);
  }

  /** Output column values of records [skip, skip + n) of the batch. */
  private decode(batch: ExportBatch, skip: number, n: number): unknown[][] {
    if (this.spec.format === 'text' && this.spec.fields === undefined) return [];
    const top = this.ctx.repo.schema.map(() => new Array<unknown>(n));
    decodeColumns(batch.lines, skip, n, this.ctx.schema, top);
    return columnValues(this.cols, top, n);
  }

  /** Each record's contribution to the file size, and the encoded lines of line formats. */
  private rowSizes(batch: ExportBatch, skip: number, n: number, vals: unknown[][]): { rows: number[]; lines: string[] } {
    const rows = new Array<number>(n);
    const lines: string[] = [];
    if (this.encode) {
      this.encode(vals, batch.lines, skip, n, lines);
      for (let i = 0; i < n; i++) rows[i] = Buffer.byteLength(lines[i] as string) + 1;
    } else {
      for (let i = 0; i < n; i++) rows[i] = (batch.lines[skip + i] as string).length + 1;
    }
    return { rows, lines };
  }

  private intervalDue(f: OpenFile): boolean {
    if (f.forcedLast !== undefined) return false;
    const age = this.ctx.now() - f.openedAt;
    return this.spec.rotateStrategy === 'size' ? age >= SIZE_ONLY_MAX_AGE_MS : age >= this.spec.rotateInterval * 1000;
  }

  private async openFile(first: number, appendedAt: number): Promise<OpenFile> {
    const refused = bucketRefusal(this.ctx.config, this.ctx.account, this.spec.bucket);
    if (refused) throw new RetryableSinkError(refused);
    const base = this.base(appendedAt);
    const forcedLast = this.recovering ? await this.published(base, first) : undefined;
    if (forcedLast === undefined) this.recovering = false;
    await prepareSpool(this.spoolRoot);
    const spool = path.join(this.spoolRoot, `${this.tag}-${randomBytes(6).toString('hex')}.${this.ext}`);
    const f: OpenFile = { first, next: first, bytes: 0, openedAt: this.ctx.now(), key: (last) => fileKey(base, this.tag, first, last, this.ext), forcedLast, spool };
    if (!this.encode) {
      this.parquet ??= ParquetEngine.acquire(this.ctx.config, this.spoolRoot);
      f.table = await this.parquet.openTable(this.cols.map((c) => c.field), this.fused);
    } else {
      f.lines = new LineSpool(spool, this.spec.compress);
      if (this.spec.format === 'csv') {
        const header = csvHeader(this.cols, this.spec.delimiter);
        await f.lines.write([header]);
        f.bytes += Buffer.byteLength(header) + 1;
      }
    }
    return f;
  }

  /** The last offset of an object a previous run published for a file starting at `first`, if any. */
  private async published(base: string, first: number): Promise<number | undefined> {
    const stem = keyStem(base, this.tag);
    try {
      for await (const o of this.store.list(this.spec.bucket, `${stem}${first}-`)) {
        const last = lastOffsetOf(o.key, stem, first, this.ext);
        if (last !== undefined && last >= first) return last;
      }
    } catch (err) {
      throw this.storeError('listing', err);
    }
    return undefined;
  }

  private async write(f: OpenFile, vals: unknown[][], lines: string[], row: number, n: number, stored: readonly string[], skip: number): Promise<void> {
    if (f.table?.takesLines) {
      await f.table.appendLines(stored, skip + row, n);
    } else if (f.lines) {
      await f.lines.write(row === 0 && n === lines.length ? lines : lines.slice(row, row + n));
    } else if (f.table) {
      await f.table.append(row === 0 && n === (vals[0]?.length ?? 0) ? vals : vals.map((v) => v.slice(row, row + n)), n);
    }
  }

  /**
   * Finishes the open file and publishes it. A parquet file that cannot be
   * written stays open and is retried; a line file whose spool failed
   * cannot be rebuilt here (the engine retries only its current batch), so
   * the sink stalls with the reason until the export restarts, which
   * re-reads from the committed offset: nothing is lost or duplicated.
   */
  private async closeFile(): Promise<void> {
    const f = this.file;
    if (!f) return;
    try {
      if (f.lines) await f.lines.finish();
      else if (f.table) await f.table.writeTo(f.spool);
    } catch (err) {
      const what = `writing the file for offsets ${f.first}-${f.next - 1} failed: ${(err as Error).message}`;
      if (f.lines) {
        await this.discardFile();
        this.stalled = `${what}; the export resumes from offset ${f.first} once it restarts`;
        throw new RetryableSinkError(this.stalled, { cause: err });
      }
      throw new RetryableSinkError(what, { cause: err });
    }
    this.file = undefined;
    f.table?.close();
    this.pending = { key: f.key(f.next - 1), spool: f.spool, next: f.next };
    await this.publishPending();
  }

  private async publishPending(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    const refused = bucketRefusal(this.ctx.config, this.ctx.account, this.spec.bucket);
    if (refused) throw new RetryableSinkError(refused);
    try {
      await this.store.putFile(this.spec.bucket, p.key, p.spool, { move: true });
    } catch (err) {
      throw this.storeError(`publishing ${p.key}`, err);
    }
    this.pending = undefined;
    this.acked = p.next;
    await rm(p.spool, { force: true });
    // Crash tests: die between publishing a file and the engine committing its offsets.
    if (process.env.PIPELINE_FAILPOINT === 'kodo-after-publish') process.kill(process.pid, 'SIGKILL');
  }

  private async discardFile(): Promise<void> {
    const f = this.file;
    if (!f) return;
    this.file = undefined;
    await f.lines?.abort();
    f.table?.close();
    await rm(f.spool, { force: true });
    this.taken = this.acked;
  }

  /** Deletes this export's objects older than `retention` days, at most hourly. */
  private async sweep(): Promise<void> {
    if (this.spec.retention <= 0) return;
    const now = this.ctx.now();
    if (now - this.lastSweep < RETENTION_EVERY_MS) return;
    this.lastSweep = now;
    const cutoff = now - this.spec.retention * 86_400_000;
    const old: string[] = [];
    try {
      for await (const o of this.store.list(this.spec.bucket, staticPart(this.spec.keyPrefix))) {
        if (o.modified < cutoff && isExportFile(o.key, this.tag, this.ext)) old.push(o.key);
      }
      if (old.length > 0) await this.store.delete(this.spec.bucket, old);
    } catch (err) {
      this.ctx.log.warn({ err, export: this.ctx.exportName, bucket: this.spec.bucket }, 'kodo retention sweep failed');
      return;
    }
    if (old.length > 0) this.ctx.log.info({ export: this.ctx.exportName, bucket: this.spec.bucket, deleted: old.length }, 'kodo retention deleted old files');
  }

  /**
   * A store failure, retried: no single record causes one (keys are checked
   * with the spec), and a missing bucket or a symlink in the way can be
   * fixed by the operator while the export waits.
   */
  private storeError(what: string, err: unknown): Error {
    const detail = err instanceof NoSuchBucketError ? `bucket "${this.spec.bucket}" does not exist` : (err as Error).message;
    return new RetryableSinkError(`${what} in bucket "${this.spec.bucket}" failed: ${detail}`, { cause: err });
  }
}
