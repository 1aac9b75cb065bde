/**
 * Reading points: find the frame holding the first wanted offset by binary
 * search over the sparse indexes, then read whole frames (coalesced into
 * reads of up to READ_CHUNK_BYTES) with async I/O, checking each CRC.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { LogCorruptError } from './errors.ts';
import { HEADER_BYTES, decodeHeader, frameCrcOk } from './frame.ts';
import { readFully } from './fsutil.ts';
import type { Segment } from './segment.ts';
import type { ReadResult } from './types.ts';

/** Upper bound of one read call, unless a single frame is larger. */
const READ_CHUNK_BYTES = 4 << 20;
/** A segment can vanish between lookup and open when retention drops it; retry that many times. */
const MAX_ATTEMPTS = 5;

/** The segment holding the next offset was dropped by retention mid-read. */
class SegmentDroppedError extends Error {
  override name = 'SegmentDroppedError';
}

/** Index of the segment holding `offset` in `segments` (sorted by base, offset >= segments[0].base). */
function segmentIndex(segments: readonly Segment[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (segments[mid]!.base <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Reads up to `maxPoints` points from `from`, never past `durableEnd`.
 * `segments` is the log's live list (retention may shift it meanwhile).
 * An offset below the retained range is moved up to the first retained one;
 * an offset at or past the end yields no lines and keeps `from` as given.
 */
export async function readPoints(
  segments: readonly Segment[],
  from: number,
  maxPoints: number,
  durableEnd: number,
): Promise<ReadResult> {
  if (!Number.isSafeInteger(from)) throw new RangeError(`invalid read offset ${from}`);
  for (let attempt = 1; ; attempt++) {
    const start = Math.max(from, segments[0]!.base);
    const limit = Math.min(durableEnd, start + Math.max(0, Math.floor(maxPoints)));
    const lines: string[] = [];
    const times: number[] = [];
    try {
      let pos = start;
      while (pos < limit) {
        const segment = segments[segmentIndex(segments, pos)]!;
        if (segment.base > pos) throw new SegmentDroppedError();
        const reached = await readSegment(segment, pos, limit, lines, times);
        // The index promises points up to durableEnd; not advancing would loop forever.
        if (reached <= pos) throw new LogCorruptError(`no frame holds offset ${pos}`, segment.path, segment.size);
        pos = reached;
      }
      return { from: start, lines, times, next: start + lines.length };
    } catch (err) {
      const vanished =
        err instanceof SegmentDroppedError || (err as NodeJS.ErrnoException).code === 'ENOENT';
      if (!vanished || attempt >= MAX_ATTEMPTS) throw err;
    }
  }
}

/** Appends the points [pos, min(limit, segment end)) to lines/times; returns the offset reached. */
async function readSegment(
  segment: Segment,
  pos: number,
  limit: number,
  lines: string[],
  times: number[],
): Promise<number> {
  const handle = await open(segment.path, 'r');
  try {
    let i = segment.frameIndex(pos);
    const frames = segment.bases.length;
    while (pos < limit && i < frames) {
      const startByte = segment.positions[i]!;
      let j = i + 1; // frames [i, j) go into one read
      while (j < frames && segment.bases[j]! < limit && segment.frameEnd(j) - startByte <= READ_CHUNK_BYTES) j++;
      const buf = Buffer.allocUnsafe(segment.frameEnd(j - 1) - startByte);
      await readFully(handle, buf, startByte);
      pos = decodeFrames(segment, buf, i, j, pos, limit, lines, times);
      i = j;
    }
    return pos;
  } finally {
    await closeQuietly(handle);
  }
}

function decodeFrames(
  segment: Segment,
  buf: Buffer,
  first: number,
  last: number,
  pos: number,
  limit: number,
  lines: string[],
  times: number[],
): number {
  let at = 0;
  for (let k = first; k < last; k++) {
    const header = decodeHeader(buf, at);
    if (!header || header.baseOffset !== segment.bases[k] || !frameCrcOk(buf, at, header)) {
      throw new LogCorruptError('frame fails its checks on read', segment.path, segment.positions[k]!);
    }
    const payloadStart = at + HEADER_BYTES;
    const payloadEnd = payloadStart + header.payloadBytes;
    const skip = pos - header.baseOffset;
    const take = Math.min(header.count, limit - header.baseOffset);
    // Decode only the wanted lines: small reads from the middle of a big
    // frame would otherwise decode and split the whole frame every time.
    const from = skip === 0 ? payloadStart : nthLineStart(buf, payloadStart, payloadEnd, skip);
    const to = take === header.count ? payloadEnd : nthLineStart(buf, from, payloadEnd, take - skip) - 1;
    const points = from < 0 || to < from ? [] : buf.toString('utf8', from, to).split('\n');
    if (points.length !== take - skip) {
      throw new LogCorruptError('frame point count mismatch', segment.path, segment.positions[k]!);
    }
    for (let x = 0; x < points.length; x++) {
      lines.push(points[x]!);
      times.push(header.time);
    }
    pos = header.baseOffset + take;
    at = payloadEnd;
  }
  return pos;
}

/** Byte position where the line `n` lines after the one starting at `from` begins; -1 if there is none. */
function nthLineStart(buf: Buffer, from: number, end: number, n: number): number {
  let at = from;
  for (let i = 0; i < n; i++) {
    const nl = buf.indexOf(10, at);
    if (nl < 0 || nl >= end) return -1;
    at = nl + 1;
  }
  return at;
}

async function closeQuietly(handle: FileHandle): Promise<void> {
  try {
    await handle.close();
  } catch {
    // a failed close of a read-only handle loses nothing
  }
}
