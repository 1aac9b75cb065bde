/**
 * plugin-throughput: a JavaScript plugin doing a trivial map, timed as a
 * whole plugin-only transform run (runNow) over 500,000 source points and as
 * JsPluginRuntime.run alone on the same points already decoded.
 */
import { encodePoint } from '../src/ingest/points.ts';
import type { Point } from '../src/ingest/types.ts';
import type { OutputField } from '../src/plugins/js-runtime.ts';
import { fmtInt, fmtNum, type BenchContext, type WorkloadResult } from './lib.ts';
import { SCHEMA } from './points.ts';
import { ACCOUNT, createTransforms, fillSource, medianMs, medianOf, timeReadDecode, startInProcess, timeAppend, timedRun } from './transform-app.ts';

const N = 500_000;
const SOURCE = 'src';
const RUN_REPS = 5;
const STEP_REPS = 3;
const TARGET = 300_000;
const PLUGIN = 'bench.TrivialMap';
const CODE = 'export default (p) => ({ host: p.host, latency: p.latency + 1 });\n';
const OUTPUT: OutputField[] = [{ name: 'host', type: 'string' }, { name: 'latency', type: 'long' }];

const rate = (ms: number): number => N / (ms / 1000);

export async function runPluginThroughput(bench: BenchContext): Promise<WorkloadResult> {
  const app = await startInProcess(bench, 'plugin-throughput', { transformBatch: N });
  app.ctx.repos.create(ACCOUNT, SOURCE, { region: 'nb', schema: SCHEMA });
  await app.ctx.plugins.upload(ACCOUNT, PLUGIN, Buffer.from(CODE));
  const names = Array.from({ length: RUN_REPS }, (_, r) => `map_${r}`);
  await createTransforms(app, SOURCE, names.map((name) => ({ name, dest: `${name}_out`, body: { plugin: { name: PLUGIN, output: OUTPUT }, interval: '10m' } })));
  const t0 = performance.now();
  await fillSource(app, SOURCE, N);
  bench.log(`pushed ${fmtInt(N)} points in ${fmtNum((performance.now() - t0) / 1000)} s (not measured)`);

  const runMs: number[] = [];
  const gcMs: number[] = [];
  for (const name of names) {
    const r = await timedRun(app, SOURCE, name, N);
    if (r.out !== N) throw new Error(`plugin run emitted ${r.out} points, expected ${N}`);
    runMs.push(r.ms);
    gcMs.push(r.gcMs);
    bench.log(`${name}: ${fmtInt(r.ms)} ms (GC ${fmtInt(r.gcMs)} ms)`);
  }

  // The same points the runs saw, decoded once, for the runtime alone.
  const { read, decode, points: decoded } = await timeReadDecode(app, SOURCE, N, STEP_REPS);
  let points: Point[] = decoded;
  // The id the runner uses, so the runtime's compiled-form cache and warm workers are shared.
  const id = `${ACCOUNT}/${PLUGIN}`;
  let out: Point[] = [];
  const plugin = await medianMs(STEP_REPS, async () => {
    out = [];
    out = await app.ctx.plugins.js.run(id, CODE, points, OUTPUT);
  });
  if (out.length !== N) throw new Error(`JsPluginRuntime.run returned ${out.length} points, expected ${N}`);
  points = [];
  const dest = app.ctx.repos.must(ACCOUNT, `${names[0]}_out`);
  const destSchema = app.ctx.repos.compiled(ACCOUNT, dest);
  let encoded: string[] = [];
  const encode = await medianMs(STEP_REPS, async () => {
    encoded = [];
    encoded = out.map((p) => encodePoint(p, destSchema));
  });
  const appendMs = await timeAppend(app, dest.schema, encoded, STEP_REPS);

  const run = medianOf(runMs);
  const row = (label: string, ms: number): string[] => [label, fmtNum(ms), fmtInt(rate(ms)), `${fmtNum((100 * ms) / run, 0)} %`];
  return {
    tables: [{
      title: `JavaScript plugin \`${CODE.trim()}\` over ${fmtInt(N)} points, ${app.config.pluginWorkers} workers (process isolation)`,
      columns: ['step', 'ms', 'points/s', 'of run'],
      rows: [
        row(`plugin-only transform run (runNow, median of ${RUN_REPS})`, run),
        [`each step timed alone (median of ${STEP_REPS}):`, '', '', ''],
        row('  log read (wire lines)', read.median),
        row('  decodeLine -> Point objects', decode.median),
        row('  JsPluginRuntime.run (JSON out, workers, JSON back, output check)', plugin.median),
        row('  encodePoint of the output rows', encode.median),
        row(`  append of the encoded rows (fsync=${app.config.fsync})`, appendMs),
        row('  rest by difference (offsets, GC, ...)', run - read.median - decode.median - plugin.median - encode.median - appendMs),
        row('V8 GC pauses inside the full runs (overlap the steps; median)', medianOf(gcMs)),
      ],
    }],
    checks: [{
      name: 'plugin-throughput: whole transform run (runNow) points/s',
      target: `>= ${fmtInt(TARGET)}`,
      actual: `${fmtInt(rate(run))} (JsPluginRuntime.run alone: ${fmtInt(rate(plugin.median))})`,
      ok: rate(run) >= TARGET,
    }],
    json: {
      points: N, workers: app.config.pluginWorkers, fsync: app.config.fsync, runMs, runGcMs: gcMs, runMedianMs: run, runPointsPerSec: rate(run),
      readMs: read.all, decodeMs: decode.all, pluginMs: plugin.all, pluginPointsPerSec: rate(plugin.median), encodeMs: encode.all, appendMs,
    },
    notes: ['The target is checked on the whole transform run (read + decode + plugin + encode + append + commit), not on the runtime alone.'],
  };
}
