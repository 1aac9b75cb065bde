/**
 * The on-disk frame: one per append() call, so a request's points become
 * durable (or are lost) together. Layout, little endian, 32-byte header:
 *
 *   0  u32 magic 'PLG1' (also the format version)
 *   4  u32 CRC32 of bytes 8..end (rest of header + payload)
 *   8  u32 payload length in bytes
 *  12  u32 point count (>= 1)
 *  16  u64 offset of the first point
 *  24  u64 append time, ms since epoch
 *  32  payload: the wire lines joined with '\n', UTF-8
 *
 * The CRC covers the length, offsets and time, so a torn or zero-filled tail
 * is never mistaken for a frame.
 */
import { crc32 } from 'node:zlib';

export const HEADER_BYTES = 32;
/** 'PLG1' read as a little-endian u32. */
export const MAGIC = 0x31474c50;
/** Payloads are capped well below the u32 limit and Node's max string length. */
export const MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

const TWO_32 = 2 ** 32;

export interface FrameHeader {
  crc: number;
  payloadBytes: number;
  count: number;
  baseOffset: number;
  time: number;
}

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32LE(value % TWO_32, at);
  buf.writeUInt32LE(Math.floor(value / TWO_32), at + 4);
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO_32;
}

/**
 * Builds the header for `payload`; the payload stays a separate buffer so the
 * write path does not copy ~1 MB per request (it is written with writev).
 */
export function encodeHeader(payload: Buffer, count: number, baseOffset: number, time: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(payload.length, 8);
  header.writeUInt32LE(count, 12);
  writeU64(header, baseOffset, 16);
  writeU64(header, time, 24);
  header.writeUInt32LE(crc32(payload, crc32(header.subarray(8))), 4);
  return header;
}

/**
 * Decodes and sanity-checks a header at `at` in `buf`; returns undefined when
 * the bytes cannot be a header (wrong magic, impossible length or count).
 */
export function decodeHeader(buf: Buffer, at: number): FrameHeader | undefined {
  if (buf.length - at < HEADER_BYTES || buf.readUInt32LE(at) !== MAGIC) return undefined;
  const payloadBytes = buf.readUInt32LE(at + 8);
  const count = buf.readUInt32LE(at + 12);
  // count-1 separators must fit in the payload.
  if (payloadBytes > MAX_PAYLOAD_BYTES || count < 1 || count - 1 > payloadBytes) return undefined;
  return {
    crc: buf.readUInt32LE(at + 4),
    payloadBytes,
    count,
    baseOffset: readU64(buf, at + 16),
    time: readU64(buf, at + 24),
  };
}

/** True when the frame starting at `at` (header and payload inside `buf`) matches its CRC. */
export function frameCrcOk(buf: Buffer, at: number, header: FrameHeader): boolean {
  const end = at + HEADER_BYTES + header.payloadBytes;
  return end <= buf.length && crc32(buf.subarray(at + 8, end)) === header.crc;
}
