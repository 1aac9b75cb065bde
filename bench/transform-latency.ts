/**
 * transform-latency: the real server (child process, built like the ingest
 * bench's) with a 5 s transform on its own scheduler. Small batches are
 * pushed every 250 ms; each batch's latency is the time from its 200 OK to
 * its rows being readable in the destination through GET .../data.
 *
 * GET .../data?count=10 answers only the newest 10 points, fewer than one run
 * appends, so visibility is inferred from the newest batch seen: a run reads
 * a contiguous range from its committed offset and appends its output in one
 * atomic append, and batches are pushed one after another, so once batch k is
 * readable every batch before it is too.
 */
import { request } from 'undici';
import { fmtInt, percentile, sleep, tempDir, type BenchContext, type WorkloadResult } from './lib.ts';
import { buildOnce, freePort, serverEnv, signedHeaders, signedJson, startChild, type RunningChild } from './server.ts';

const INTERVAL = '5s';
const INTERVAL_MS = 5_000;
const PUSH_MS = 32_000;
const PUSH_EVERY_MS = 250;
const POINTS_PER_BATCH = 5;
const POLL_MS = 50;
/** After the last push: one interval, a run and some slack. */
const DRAIN_MS = INTERVAL_MS + 3_000;
const TARGET_P99_MS = INTERVAL_MS + 1_000;
const SOURCE = 'src';
const DEST = 'dst';

interface Timeline {
  /** performance.now() of each batch's 200 OK, by batch number. */
  okAt: number[];
  /** performance.now() of the poll answer that first showed the batch (or a later one). */
  visibleAt: Array<number | undefined>;
}

/**
 * Polls the destination's newest points until `stop()`; marks every batch up
 * to the newest seen. A failed poll ends the loop; `failed()` says why and
 * `stop()` rethrows it.
 */
function startPoller(url: string, t: Timeline): { failed(): unknown; stop(): Promise<void> } {
  const path = `/v2/repos/${DEST}/data`;
  let stopped = false;
  let error: unknown;
  let seenUpTo = -1;
  const loop = (async (): Promise<void> => {
    while (!stopped) {
      const started = performance.now();
      // The signature covers the path without the query string.
      const res = await request(`${url}${path}?count=10`, { headers: signedHeaders('GET', path) });
      const body = await res.body.text();
      const now = performance.now();
      if (res.statusCode !== 200) throw new Error(`GET ${path}?count=10: ${res.statusCode} ${body}`);
      const { records } = JSON.parse(body) as { records: Array<{ seq?: number }> };
      const newest = Math.max(-1, ...records.map((r) => r.seq ?? -1));
      for (let k = seenUpTo + 1; k <= newest; k++) t.visibleAt[k] = now;
      seenUpTo = Math.max(seenUpTo, newest);
      await sleep(Math.max(0, POLL_MS - (performance.now() - started)));
    }
  })().catch((err: unknown) => {
    error = err ?? new Error('poll failed');
  });
  return {
    failed: () => error,
    stop: async () => {
      stopped = true;
      await loop;
      if (error !== undefined) throw error;
    },
  };
}

async function pushBatch(url: string, seq: number): Promise<void> {
  const path = `/v2/repos/${SOURCE}/data`;
  const lines = Array.from({ length: POINTS_PER_BATCH }, (_, i) => `seq=${seq}\thost=web-${String(i).padStart(3, '0')}.nb\tlatency=${seq * 10 + i}`);
  const res = await request(`${url}${path}`, { method: 'POST', headers: signedHeaders('POST', path, 'text/plain'), body: lines.join('\n') });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`push of batch ${seq}: ${res.statusCode} ${text}`);
}

/** Pushes a batch every PUSH_EVERY_MS (on a fixed schedule, not drifting with response times) and waits for them to show up. */
async function drive(ctx: BenchContext, server: RunningChild): Promise<Timeline> {
  const t: Timeline = { okAt: [], visibleAt: [] };
  const poller = startPoller(server.url, t);
  try {
    const start = performance.now();
    for (let seq = 0; seq * PUSH_EVERY_MS < PUSH_MS && poller.failed() === undefined; seq++) {
      await sleep(Math.max(0, start + seq * PUSH_EVERY_MS - performance.now()));
      await pushBatch(server.url, seq);
      t.okAt[seq] = performance.now();
    }
    ctx.log(`pushed ${t.okAt.length} batches; waiting up to ${DRAIN_MS / 1000} s for the last ones`);
    const deadline = performance.now() + DRAIN_MS;
    while (t.visibleAt[t.okAt.length - 1] === undefined && performance.now() < deadline && poller.failed() === undefined) await sleep(POLL_MS);
  } finally {
    await poller.stop();
  }
  return t;
}

export async function runLatency(ctx: BenchContext): Promise<WorkloadResult> {
  const entry = buildOnce(ctx).server;
  const dataDir = tempDir(ctx.cleanup, 'transform-latency');
  const port = await freePort();
  const server = await startChild(ctx, { name: 'server', entry, env: serverEnv(dataDir, port), port, healthPath: '/health' });
  let t: Timeline;
  let status: unknown;
  try {
    const schema = [
      { key: 'seq', valtype: 'long', required: true },
      { key: 'host', valtype: 'string', required: true },
      { key: 'latency', valtype: 'long', required: true },
    ];
    await signedJson(server.url, 'POST', `/v2/repos/${SOURCE}`, { region: 'nb', schema });
    await signedJson(server.url, 'POST', `/v2/repos/${SOURCE}/transforms/lat/to/${DEST}`, {
      mode: 'sql', code: `select seq, host, latency from ${SOURCE}`, interval: INTERVAL,
    });
    ctx.log(`server pid ${server.pid} (${entry.kind}); pushing ${POINTS_PER_BATCH} points every ${PUSH_EVERY_MS} ms for ${PUSH_MS / 1000} s`);
    t = await drive(ctx, server);
    status = (JSON.parse(await signedJson(server.url, 'GET', `/v2/repos/${SOURCE}/transforms/lat`)) as { status?: unknown }).status;
  } finally {
    const code = await server.stop();
    if (code !== 0 && code !== null) ctx.log(`warning: server exited with ${code}:\n${server.output()}`);
  }
  return report(t, status, entry.kind);
}

/** The parts of the transform's GET status worth a line in the report. */
function statusLine(status: unknown): string {
  const st = (status ?? {}) as { state?: string; lastError?: string | null; lastRun?: { in: number; ms: number } | null; total?: { in: number; out: number } };
  const last = st.lastRun ? `, last run ${st.lastRun.in} points in ${st.lastRun.ms} ms` : '';
  return `${st.state ?? '?'}${st.lastError ? ` (${st.lastError})` : ''}, total in/out ${st.total?.in ?? '?'}/${st.total?.out ?? '?'}${last}`;
}

function report(t: Timeline, status: unknown, kind: string): WorkloadResult {
  const lat: number[] = [];
  let unseen = 0;
  t.okAt.forEach((ok, k) => {
    const seen = t.visibleAt[k];
    if (seen === undefined) unseen++;
    else lat.push(seen - ok);
  });
  lat.sort((a, b) => a - b);
  // A batch never seen counts as infinitely late, so the check cannot pass by losing data.
  const all = [...lat, ...Array<number>(unseen).fill(Infinity)];
  const p50 = percentile(all, 50);
  const p99 = percentile(all, 99);
  const max = all[all.length - 1] ?? NaN;
  const ms = (v: number): string => (Number.isFinite(v) ? fmtInt(v) : 'never');
  return {
    tables: [{
      title: `200 OK -> readable in the destination, interval ${INTERVAL}, ${t.okAt.length} batches of ${POINTS_PER_BATCH} points (server: ${kind})`,
      columns: ['batches', 'unseen', 'min ms', 'p50 ms', 'p99 ms', 'max ms'],
      rows: [[fmtInt(t.okAt.length), fmtInt(unseen), ms(lat[0] ?? NaN), ms(p50), ms(p99), ms(max)]],
    }],
    checks: [{
      name: `transform-latency p99 (interval ${INTERVAL})`,
      target: `< ${fmtInt(TARGET_P99_MS)} ms`,
      actual: `${ms(p99)} ms`,
      ok: p99 < TARGET_P99_MS,
    }],
    json: { intervalMs: INTERVAL_MS, batches: t.okAt.length, pointsPerBatch: POINTS_PER_BATCH, pollMs: POLL_MS, unseen, latenciesMs: lat, p50, p99, max, transformStatus: status },
    notes: [
      `Visibility polled every ${POLL_MS} ms with GET .../data?count=10 (adds up to ~${POLL_MS} ms); a batch counts as readable once it or a later batch`,
      `is seen (one run appends atomically, in source order). Pushes use fsync=always (server default).`,
      `Transform status at the end: ${statusLine(status)}; ${fmtInt(t.okAt.length * POINTS_PER_BATCH)} points pushed.`,
    ],
  };
}
