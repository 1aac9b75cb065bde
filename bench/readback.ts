/**
 * Read-back cost: opens a stopped server's data dir in-process with the same
 * log options the server uses and reads one repo from offset 0 to its end in
 * batches, once raw (frames -> wire lines) and once decoded (decodeLine per
 * point, what every transform and sample read pays). The data was just
 * written, so it is mostly in the page cache: this is CPU cost, not disk speed.
 */
import path from 'node:path';
import { loadConfig } from '../src/config.ts';
import { compileSchema, decodeLine } from '../src/ingest/points.ts';
import { RepoService } from '../src/services/repos.ts';
import { createLogStore, type RepoLog } from '../src/storage/log/index.ts';
import { MetaStore } from '../src/storage/meta.ts';

export interface ReadBackResult {
  /** Points in the repo (end offset - start offset). */
  points: number;
  bytesOnDisk: number;
  /** Opening the log: recovery scan of the tail segments plus the index of the rest. */
  openMs: number;
  raw: PassResult;
  decoded: PassResult;
}

export interface PassResult {
  points: number;
  seconds: number;
  pointsPerSec: number;
  /** Stopped early at the time cap (the rate is still valid, the pass incomplete). */
  capped: boolean;
}

const BATCH = 10_000;

async function pass(log: RepoLog, capS: number, perBatch: (lines: string[]) => void): Promise<PassResult> {
  const t0 = performance.now();
  const deadline = t0 + capS * 1000;
  let from = log.startOffset();
  const end = log.endOffset();
  let points = 0;
  let capped = false;
  while (from < end) {
    if (performance.now() > deadline) {
      capped = true;
      break;
    }
    const r = await log.read(from, BATCH);
    if (r.lines.length === 0) break;
    perBatch(r.lines);
    points += r.lines.length;
    from = r.next;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { points, seconds, pointsPerSec: points / seconds, capped };
}

/** Reads repo `account/name` of the data dir (the server must be stopped). */
export async function readBack(dataDir: string, account: string, name: string, capS: number): Promise<ReadBackResult> {
  // The same config loader and option mapping as the server (src/app.ts), so segment size etc. match.
  const config = loadConfig({ PIPELINE_DATA_DIR: dataDir, PIPELINE_FSYNC: 'always' });
  const meta = new MetaStore(path.join(dataDir, 'meta.db'));
  const repo = meta.getRepo(account, name);
  meta.close();
  if (!repo) throw new Error(`repo ${account}/${name} not found in ${dataDir}`);
  const logs = createLogStore({
    dir: path.join(dataDir, 'repos'),
    fsync: { mode: 'always' },
    segmentBytes: config.segmentBytes,
    retentionMs: config.retentionMs,
    retentionBytes: config.retentionBytes,
  });
  try {
    const t0 = performance.now();
    const log = await logs.open(RepoService.logKey(account, repo));
    const openMs = performance.now() - t0;
    let chars = 0;
    const raw = await pass(log, capS, (lines) => {
      for (const l of lines) chars += l.length;
    });
    const schema = compileSchema(repo.schema);
    let fields = 0;
    const decoded = await pass(log, capS, (lines) => {
      for (const l of lines) fields += Object.keys(decodeLine(l, schema)).length;
    });
    // Keeps the work observable so nothing is optimised away.
    if (chars < 0 || fields < 0) throw new Error('unreachable');
    return { points: log.endOffset() - log.startOffset(), bytesOnDisk: log.sizeBytes(), openMs, raw, decoded };
  } finally {
    await logs.close();
  }
}
