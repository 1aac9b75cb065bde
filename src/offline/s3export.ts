/**
 * A kodo job export on an S3-compatible store. DuckDB writes the run's files
 * into a private local staging folder exactly as for local buckets; publish
 * then uploads them. S3 has no rename, so a folder of files cannot appear in
 * one step; the publish protocol instead (docs/decisions/016, "S3"):
 *
 * 1. `<prefix>/_PENDING` is written (a first run's files stay invisible);
 * 2. every data file is uploaded under a name unique to the attempt
 *    (`run<runId>-<tag>-part-…`), so no object a previous run published is
 *    rewritten in place;
 * 3. `<prefix>/_SUCCESS` is written last: a JSON manifest `{runId, keys}`
 *    naming every key of the output (append: the old ones plus the new);
 * 4. overwrite deletes the previous keys only now, then `_PENDING` goes.
 *
 * A journal entry (s3pending.ts) covers steps 1-4, so that a publish cut off
 * by a crash is taken back at the next start or before the next publish to
 * the same folder: its own objects, recognised by the tag in their names.
 *
 * Readers of this server (kodo datasources, s3sources.ts) read below a
 * marked folder only the keys of its manifest, so they see the old output or
 * the new one, never a mix. Other readers see `_SUCCESS` as the Hadoop
 * "output complete" marker.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { objectStoreFor, type ObjectStore } from '../objectstore/index.ts';
import type { Config } from '../config.ts';
import { listAll, StagedExport, type ExportTarget } from './exportwriter.ts';
import type { JobExportSpec } from './exportspec.ts';
import { PENDING_MARKER, SUCCESS_MARKER } from './s3sources.ts';
import type { S3PendingJournal } from './s3pending.ts';

const UPLOAD_PARALLEL = 4;

export class S3StagedExport extends StagedExport {
  private readonly store: ObjectStore;
  private readonly bucket: string;

  /**
   * `target.root` is a local folder for staging only; `target.key` is the key
   * prefix in `bucket`; `journal` records the publish while it runs, for
   * recovery after a crash; `owner` names the run's account and job in it.
   */
  constructor(config: Config, spec: JobExportSpec, target: ExportTarget, private readonly journal: S3PendingJournal, private readonly owner: { account: string; job: string }) {
    super(spec, target);
    this.store = objectStoreFor(config);
    this.bucket = spec.bucket as string;
  }

  /** The output's folder prefix ('' for the bucket root). */
  private get folder(): string {
    return this.target.key === '' ? '' : this.target.key + '/';
  }

  private async keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const o of this.store.list(this.bucket, prefix)) keys.push(o.key);
    return keys;
  }

  override async precheck(): Promise<'write' | 'skip'> {
    if (this.target.singleFile) return this.decide((await this.keysUnder(this.target.key)).includes(this.target.key));
    for await (const _o of this.store.list(this.bucket, this.folder)) return this.decide(true);
    return this.decide(false);
  }

  override async publish(): Promise<void> {
    const files = await listAll(this.out);
    if (this.target.singleFile) {
      // One object: a single PUT is atomic on S3.
      const only = files[0];
      if (!only) return;
      const taken = this.spec.saveMode === 'append' && (await this.keysUnder(this.target.key)).includes(this.target.key);
      await this.store.putFile(this.bucket, taken ? `${this.target.key}.${this.target.runId}` : this.target.key, only);
      await this.abort();
      return;
    }
    const folder = this.folder;
    // What a crashed publish left in this folder goes first (s3pending.ts).
    await this.journal.settle(this.bucket, folder);
    const before = (await this.keysUnder(folder)).filter((k) => !isMarker(folder, k));
    const old = this.spec.saveMode === 'append' ? await this.manifest(before) : [];
    const tag = `run${this.target.runId}-${randomBytes(3).toString('hex')}`;
    const fresh = files.map((f) => {
      const rel = path.relative(this.out, f).split(path.sep);
      const name = rel.pop() as string;
      return { file: f, rel: [...rel, `${tag}-${name}`].join('/') };
    });
    const entry = await this.journal.begin({ bucket: this.bucket, folder, tag, saveMode: this.spec.saveMode, export: this.target.name, runId: this.target.runId, ...this.owner });
    const marker = { runId: this.target.runId, tag, job: this.owner.job, export: this.target.name };
    let published = false;
    try {
      await this.store.put(this.bucket, folder + PENDING_MARKER, JSON.stringify({ ...marker, started: new Date().toISOString() }));
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < fresh.length; i = next++) {
          const f = fresh[i] as { file: string; rel: string };
          await this.store.putFile(this.bucket, folder + f.rel, f.file);
        }
      };
      await Promise.all(Array.from({ length: Math.min(UPLOAD_PARALLEL, fresh.length) }, worker));
      const keys = [...old, ...fresh.map((f) => f.rel)];
      await this.store.put(this.bucket, folder + SUCCESS_MARKER, JSON.stringify({ ...marker, written: new Date().toISOString(), keys }));
      published = true;
      if (this.spec.saveMode !== 'append') await this.store.delete(this.bucket, before);
      await this.store.delete(this.bucket, [folder + PENDING_MARKER]);
    } catch (err) {
      // Not published: take back what went up, leave the previous output as it was. Published but not
      // finished (old keys or _PENDING still there): the journal entry lets recovery finish it.
      const undone = !published && (await this.store.delete(this.bucket, [...fresh.map((f) => folder + f.rel), folder + PENDING_MARKER]).then(() => true, () => false));
      if (undone) await this.journal.end(entry);
      else this.journal.release(entry);
      throw err;
    }
    await this.journal.end(entry);
    await this.abort();
  }

  /** Keys (relative) of the previous output for append: its manifest, or every data key when it has none. */
  private async manifest(before: string[]): Promise<string[]> {
    const folder = this.folder;
    try {
      const body = JSON.parse(await text(await this.store.get(this.bucket, folder + SUCCESS_MARKER))) as { keys?: unknown };
      if (Array.isArray(body.keys)) return body.keys.filter((k): k is string => typeof k === 'string');
    } catch {
      // no manifest of ours: fall back to what is there
    }
    return before.map((k) => k.slice(folder.length));
  }

  override async retention(prefix: string, days: number, now: number): Promise<number> {
    const cutoff = now - days * 86_400_000;
    const old: string[] = [];
    for await (const o of this.store.list(this.bucket, prefix)) if (o.modified < cutoff) old.push(o.key);
    await this.store.delete(this.bucket, old);
    return old.length;
  }
}

const isMarker = (folder: string, key: string): boolean => key === folder + SUCCESS_MARKER || key === folder + PENDING_MARKER;
