/**
 * Opening a log directory: list the segment files, rebuild their indexes and
 * repair the tail after a crash.
 *
 * The writer keeps at most the last two segments unsynced (see
 * SegmentedLog.roll), so only those can legitimately end in a torn frame or
 * be followed by a file whose offsets do not continue; they are checked with
 * CRCs and cut back to their valid prefix. Damage in an older segment is not
 * a crash artefact but real corruption, and is reported rather than "fixed".
 */
import { closeSync, ftruncateSync, fdatasyncSync, openSync } from 'node:fs';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LogCorruptError } from './errors.ts';
import { fsyncDir } from './fsutil.ts';
import { Segment, parseSegmentFileName, scanSegment, segmentFileName } from './segment.ts';

/** How many trailing segments may hold unsynced data and are therefore verified in full. */
export const UNSYNCED_TAIL_SEGMENTS = 2;

/** Creates `dir` (and missing parents) durably: each new directory entry is fsynced. */
async function ensureDir(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    await fsyncDir(dirname(d));
    if (d === first || dirname(d) === d) break;
  }
}

function truncateDurably(path: string, size: number): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, size);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Returns the segments of the log in `dir`, oldest first, with a valid tail
 * (the last one is the active segment; there is always at least one).
 * Throws LogCorruptError when a segment outside the tail is damaged.
 */
export async function recoverSegments(dir: string): Promise<Segment[]> {
  await ensureDir(dir);
  const bases = (await readdir(dir))
    .map(parseSegmentFileName)
    .filter((b): b is number => b !== undefined)
    .sort((a, b) => a - b);
  if (bases.length === 0) {
    const segment = new Segment(join(dir, segmentFileName(0)), 0);
    closeSync(openSync(segment.path, 'wx'));
    await fsyncDir(dir);
    return [segment];
  }

  const segments: Segment[] = [];
  const tailFrom = Math.max(0, bases.length - UNSYNCED_TAIL_SEGMENTS);
  let dropFrom = bases.length;
  for (let i = 0; i < bases.length; i++) {
    const base = bases[i]!;
    const path = join(dir, segmentFileName(base));
    const inTail = i >= tailFrom;
    const previous = segments.at(-1);
    if (previous && base !== previous.end) {
      if (!inTail) throw new LogCorruptError(`segment does not continue at offset ${previous.end}`, path, 0);
      dropFrom = i; // a segment after a torn one: its points were never acknowledged
      break;
    }
    const { segment, fileBytes, problem } = await scanSegment(path, base, inTail);
    if (problem !== undefined && !inTail) throw new LogCorruptError(problem, path, segment.size);
    segments.push(segment);
    if (segment.size < fileBytes) {
      truncateDurably(path, segment.size);
      dropFrom = i + 1;
      break;
    }
  }
  if (dropFrom < bases.length) {
    await Promise.all(bases.slice(dropFrom).map((b) => unlink(join(dir, segmentFileName(b)))));
    await fsyncDir(dir);
  }
  return segments;
}
