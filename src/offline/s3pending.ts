/**
 * The journal of S3 job-export publishes in progress, and the clean-up of
 * the ones a crash cut off (docs/decisions/016, "Crash while uploading").
 *
 * Before an S3 publish writes `<prefix>/_PENDING`, it records here, in a
 * small fsynced file under `<dataDir>/offline/s3-pending/`, the bucket, the
 * folder and the attempt's tag (`run<runId>-<6 hex>`, the start of every
 * data object name it uploads). The file goes when the publish is complete
 * or fully taken back. A file still there at start belongs to a publish the
 * process did not finish: recovery then deletes the objects of that attempt
 * that the folder's `_SUCCESS` manifest does not list (and, when the attempt
 * got as far as its own manifest under overwrite, the previous output it had
 * not deleted yet), then its `_PENDING`. Objects of successful runs are
 * listed in the manifest or carry another tag, so they are never touched.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.ts';
import { NoSuchBucketError, NoSuchKeyError, objectStoreFor, type ObjectStore } from '../objectstore/index.ts';
import { PENDING_MARKER, SUCCESS_MARKER } from './s3sources.ts';


/** One publish in progress: what recovery needs to take it back. */
export interface PendingPublish {
  bucket: string;
  /** The output folder ('' or ending in '/'). */
  folder: string;
  /** Start of every data object name the attempt uploads: `run<runId>-<6 hex>`. */
  tag: string;
  saveMode: string;
  account: string;
  job: string;
  export: string;
  runId: number;
}

interface Entry extends PendingPublish {
  id: string;
}

/** The JSON body of a marker, or undefined when absent or not JSON. */
export async function readMarker(store: ObjectStore, bucket: string, key: string): Promise<Record<string, unknown> | undefined> {
  try {
    const body = JSON.parse(await text(await store.get(bucket, key))) as unknown;
    return body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : undefined;
  } catch (err) {
    if (err instanceof NoSuchKeyError || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

export class S3PendingJournal {
  readonly dir: string;
  /** Entries of publishes running in this process: never recovered under them. */
  private readonly live = new Set<string>();
  private startup: Promise<void> = Promise.resolve();

  constructor(private readonly config: Config, private readonly log?: FastifyBaseLogger) {
    this.dir = path.join(config.dataDir, 'offline', 's3-pending');
  }

  /**
   * Takes back every publish the last process left unfinished (called at
   * start, before any run); failures are logged and kept for the next try.
   */
  recoverAll(): Promise<void> {
    this.startup = this.recover(() => true);
    return this.startup;
  }

  /** Before a publish to `folder`: waits for start-up recovery, then takes back what is left there. */
  async settle(bucket: string, folder: string): Promise<void> {
    await this.startup;
    await this.recover((e) => e.bucket === bucket && e.folder === folder, true);
  }

  /** Records a publish about to write `_PENDING` (fsynced: it must survive a kill -9 that follows). */
  async begin(p: PendingPublish): Promise<Entry> {
    const e: Entry = { id: randomUUID(), ...p };
    await mkdir(this.dir, { recursive: true });
    // On the thread pool, not the event loop: two fsyncs, ~5 ms on this machine.
    const fh = await open(path.join(this.dir, `${e.id}.json`), 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(e));
      await fh.sync();
    } finally {
      await fh.close();
    }
    const dh = await open(this.dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    this.live.add(e.id);
    return e;
  }

  /** The publish is complete, or fully taken back: forget it. */
  async end(e: Entry): Promise<void> {
    await unlink(path.join(this.dir, `${e.id}.json`)).catch(() => undefined);
    this.live.delete(e.id);
  }

  /** The publish stopped half way and could not clean up (S3 unreachable): leave it to recovery. */
  release(e: Entry): void {
    this.live.delete(e.id);
  }

  private async recover(which: (e: Entry) => boolean, raise = false): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.json'));
    } catch {
      return; // no journal yet
    }
    for (const n of names) {
      let e: Entry;
      try {
        e = JSON.parse(await readFile(path.join(this.dir, n), 'utf8')) as Entry;
      } catch {
        // Torn by a crash while it was written: its _PENDING was never written either.
        await unlink(path.join(this.dir, n)).catch(() => undefined);
        continue;
      }
      if (this.live.has(e.id) || !which(e)) continue;
      try {
        const removed = await takeBack(objectStoreFor(this.config), e).catch((err: unknown) => {
          if (err instanceof NoSuchBucketError) return 0; // the bucket is gone, and the leftovers with it
          throw err;
        });
        await unlink(path.join(this.dir, n)).catch(() => undefined);
        this.log?.warn({ bucket: e.bucket, folder: e.folder, job: e.job, export: e.export, runId: e.runId, removed }, 'removed the objects of an S3 job export publish cut off by a restart');
      } catch (err) {
        this.log?.warn({ err, bucket: e.bucket, folder: e.folder, job: e.job, runId: e.runId }, 'cannot clean up an S3 job export publish cut off by a restart; trying again before the next publish there');
        if (raise) throw err;
      }
    }
  }
}

/**
 * Deletes what an unfinished publish left in its folder; the number of
 * data objects removed. The folder's manifest decides what is published:
 * - the attempt's own objects not in the manifest are orphans;
 * - when the manifest is the attempt's own (it was cut off after `_SUCCESS`)
 *   under overwrite, every other unlisted data object is the previous output
 *   it was about to delete.
 * `_PENDING` goes only when it is the attempt's own.
 */
async function takeBack(store: ObjectStore, e: Entry): Promise<number> {
  const manifest = await readMarker(store, e.bucket, e.folder + SUCCESS_MARKER);
  const listed = new Set(Array.isArray(manifest?.keys) ? manifest.keys.filter((k): k is string => typeof k === 'string').map((k) => e.folder + k) : []);
  const ownManifest = manifest?.tag === e.tag;
  const markers = new Set([e.folder + SUCCESS_MARKER, e.folder + PENDING_MARKER]);
  const doomed: string[] = [];
  for await (const o of store.list(e.bucket, e.folder)) {
    if (markers.has(o.key) || listed.has(o.key)) continue;
    const name = o.key.slice(o.key.lastIndexOf('/') + 1);
    if (name.startsWith(e.tag + '-') || (ownManifest && e.saveMode !== 'append')) doomed.push(o.key);
  }
  await store.delete(e.bucket, doomed);
  const pending = await readMarker(store, e.bucket, e.folder + PENDING_MARKER);
  if (pending?.tag === e.tag) await store.delete(e.bucket, [e.folder + PENDING_MARKER]);
  return doomed.length;
}
