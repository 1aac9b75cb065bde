/**
 * One segment file and its in-memory sparse index (frame base offset -> file
 * position), plus the scanner that rebuilds the index when a log is opened.
 */
import { open } from 'node:fs/promises';
import { HEADER_BYTES, decodeHeader, frameCrcOk } from './frame.ts';
import { readFully } from './fsutil.ts';

const NAME_DIGITS = 20;
const SUFFIX = '.log';
const NAME_RE = /^(\d{20})\.log$/;

/** `00000000000000001234.log`: zero padded so names sort like offsets. */
export function segmentFileName(baseOffset: number): string {
  return String(baseOffset).padStart(NAME_DIGITS, '0') + SUFFIX;
}

/** Base offset encoded in a segment file name, or undefined for other files. */
export function parseSegmentFileName(name: string): number | undefined {
  const match = NAME_RE.exec(name);
  if (!match?.[1]) return undefined;
  const base = Number(match[1]);
  return Number.isSafeInteger(base) ? base : undefined;
}

export class Segment {
  /** Base offset of each frame, ascending. */
  readonly bases: number[] = [];
  /** File position of each frame, parallel to `bases`. */
  readonly positions: number[] = [];
  /** Bytes written; always a frame boundary because frames are written whole. */
  size = 0;
  /** Bytes known to be on stable storage. */
  syncedSize = 0;
  /** Offset one past the last frame's points. */
  end: number;
  /** Append time of the newest frame (0 when empty), for age retention. */
  lastTime = 0;
  /** Append time of the oldest frame (0 when empty), for the repo's stats. */
  firstTime = 0;
  /** Write descriptor; open while the segment is active or not yet synced. */
  fd: number | undefined;

  constructor(
    readonly path: string,
    readonly base: number,
  ) {
    this.end = base;
  }

  addFrame(baseOffset: number, position: number, count: number, time: number, bytes: number): void {
    if (this.bases.length === 0) this.firstTime = time;
    this.bases.push(baseOffset);
    this.positions.push(position);
    this.end = baseOffset + count;
    this.size = position + bytes;
    this.lastTime = time;
  }

  /** Index of the frame holding `offset` (which must be in [base, end)), by binary search. */
  frameIndex(offset: number): number {
    let lo = 0;
    let hi = this.bases.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.bases[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** File position just past frame `i`. */
  frameEnd(i: number): number {
    return i + 1 < this.positions.length ? this.positions[i + 1]! : this.size;
  }
}

export interface ScanResult {
  segment: Segment;
  /** Size of the file on disk; larger than segment.size when a bad tail was found. */
  fileBytes: number;
  /** Why scanning stopped before the end of the file, if it did. */
  problem: string | undefined;
}

/**
 * Scans the frames of a segment file from the start. Header checks (magic,
 * sane length, contiguous offsets, frame inside the file) always run; with
 * `verifyCrc` each payload is read and checked too, which is what recovery
 * does for the tail segments that may hold unsynced writes. Stops at the
 * first bad frame and reports it; the caller decides to truncate or fail.
 */
export async function scanSegment(path: string, base: number, verifyCrc: boolean): Promise<ScanResult> {
  const segment = new Segment(path, base);
  const handle = await open(path, 'r');
  try {
    const fileBytes = (await handle.stat()).size;
    // Header-only scans jump from header to header, so small reads suffice.
    const chunk = verifyCrc ? 1 << 20 : 64 << 10;
    let buf = Buffer.alloc(0);
    let bufStart = 0;
    const load = async (from: number, len: number): Promise<void> => {
      if (from >= bufStart && from + len <= bufStart + buf.length) return;
      buf = Buffer.allocUnsafe(Math.min(Math.max(len, chunk), fileBytes - from));
      bufStart = from;
      await readFully(handle, buf, from);
    };
    let pos = 0;
    let problem: string | undefined;
    while (pos < fileBytes) {
      if (pos + HEADER_BYTES > fileBytes) {
        problem = 'truncated frame header';
        break;
      }
      await load(pos, HEADER_BYTES);
      const header = decodeHeader(buf, pos - bufStart);
      if (!header) {
        problem = 'invalid frame header';
        break;
      }
      if (header.baseOffset !== segment.end) {
        problem = `frame offset ${header.baseOffset} does not follow ${segment.end}`;
        break;
      }
      const frameBytes = HEADER_BYTES + header.payloadBytes;
      if (pos + frameBytes > fileBytes) {
        problem = 'truncated frame payload';
        break;
      }
      if (verifyCrc) {
        await load(pos, frameBytes);
        if (!frameCrcOk(buf, pos - bufStart, header)) {
          problem = 'frame CRC mismatch';
          break;
        }
      }
      segment.addFrame(header.baseOffset, pos, header.count, header.time, frameBytes);
      pos += frameBytes;
    }
    segment.syncedSize = segment.size;
    return { segment, fileBytes, problem };
  } finally {
    await handle.close();
  }
}
