/**
 * Realistic ingest bodies: ~90-byte points of a typical metrics repo (host
 * string, latency long, cpu float, region string, ts date), generated with a
 * fixed seed so every run sends the same bytes.
 */
import type { SchemaField } from '../src/ingest/types.ts';

/** Same schema as bench/ingest-parse.ts, so its numbers compare. */
export const SCHEMA: SchemaField[] = [
  { key: 'host', valtype: 'string', required: true },
  { key: 'latency', valtype: 'long', required: true },
  { key: 'cpu', valtype: 'float', required: false },
  { key: 'region', valtype: 'string', required: false },
  { key: 'ts', valtype: 'date', required: true },
];

export interface Body {
  bytes: Buffer;
  points: number;
}

/** mulberry32: tiny deterministic PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ROLES = ['web', 'api', 'db', 'cache', 'mq', 'edge'];
const REGIONS = ['cn-east-1', 'cn-east-2', 'cn-north-1', 'us-west-2', 'ap-south-1'];
const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/**
 * One point. Timestamps alternate between the two shapes SDKs send: UTC with
 * milliseconds and a zone offset with nanoseconds.
 */
function point(next: () => number, tMs: number): string {
  const role = ROLES[Math.floor(next() * ROLES.length)]!;
  const host = `${role}-${pad(Math.floor(next() * 500), 3)}.nb`;
  // Latencies are mostly small with a long tail, like real request timings.
  const latency = Math.floor(next() ** 3 * 100_000);
  const cpu = Math.round(next() * 10_000) / 100;
  const region = REGIONS[Math.floor(next() * REGIONS.length)]!;
  const d = new Date(tMs);
  let ts: string;
  if (next() < 0.5) {
    ts = d.toISOString();
  } else {
    const local = new Date(tMs + 8 * 3_600_000).toISOString().slice(0, 19);
    ts = `${local}.${pad(d.getUTCMilliseconds(), 3)}${pad(Math.floor(next() * 1e6), 6)}+08:00`;
  }
  return `host=${host}\tlatency=${latency}\tcpu=${cpu}\tregion=${region}\tts=${ts}`;
}

/** `count` bodies of at most `maxBytes` each, every one a different slice of time. */
export function makeBodies(count: number, maxBytes: number, seed = 42): Body[] {
  const next = rng(seed);
  const bodies: Body[] = [];
  let t = Date.UTC(2026, 10, 24, 8, 0, 0);
  for (let b = 0; b < count; b++) {
    const lines: string[] = [];
    let size = 0;
    for (;;) {
      t += 1 + Math.floor(next() * 3);
      const line = `${point(next, t)}\n`;
      if (size + line.length > maxBytes) break;
      lines.push(line);
      size += line.length;
    }
    bodies.push({ bytes: Buffer.from(lines.join(''), 'utf8'), points: lines.length });
  }
  return bodies;
}
