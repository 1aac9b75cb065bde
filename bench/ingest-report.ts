/** The ingest workload's report: tables and target checks from the measured numbers. */
import { fmtInt, fmtNum, type Check, type ReportTable, type WorkloadResult } from './lib.ts';
import type { LoadResult } from './load.ts';
import type { ReadBackResult } from './readback.ts';

/** Targets from the issue. */
const MIN_RATIO = 0.8;
const MIN_POINTS_PER_SEC = 500_000;

function ratio(a: number, b: number): string {
  return fmtNum(a / b, 2);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** server/baseline points/s of each round (phases are paired by index). */
export function roundRatios(server: LoadResult, baseline: LoadResult): number[] {
  return server.phasePointsPerSec.map((v, i) => v / (baseline.phasePointsPerSec[i] ?? NaN));
}

export function ingestTables(server: LoadResult, baseline: LoadResult): ReportTable[] {
  const rows = (name: string, r: LoadResult): string[] => [
    name, fmtInt(r.pointsPerSec), fmtNum(r.mbPerSec), fmtNum(r.p50Ms), fmtNum(r.p99Ms), fmtNum(r.peakRssMiB, 0), fmtNum(r.idleRssMiB, 0), fmtInt(r.requests),
  ];
  const cpuRow = (name: string, r: LoadResult): string[] => [
    name, fmtNum(r.cpuUsPerPoint, 2), fmtNum(r.cpuCores, 2), fmtNum(r.mainThreadCores, 2), fmtNum(r.mainRunqWait, 2),
    fmtNum(r.clientCores, 2), fmtNum(r.otherCores, 2),
  ];
  const perRound = roundRatios(server, baseline);
  return [
    {
      title: 'ingest: ~90-byte points in ~1 MB bodies, 8 keep-alive connections, fsync group commit before 200',
      columns: ['', 'points/s', 'MB/s', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'idle RSS MiB', 'requests'],
      rows: [
        rows('server', server),
        rows('baseline', baseline),
        [
          'server/baseline', ratio(server.pointsPerSec, baseline.pointsPerSec), ratio(server.mbPerSec, baseline.mbPerSec),
          ratio(server.p50Ms, baseline.p50Ms), ratio(server.p99Ms, baseline.p99Ms), ratio(server.peakRssMiB, baseline.peakRssMiB),
          ratio(server.idleRssMiB, baseline.idleRssMiB), '',
        ],
      ],
    },
    {
      // Per-point CPU barely moves when neighbours steal cores; points/s does. "runq" = main thread ready but no core free.
      title: 'ingest CPU (cores = CPU seconds per wall second in the measured windows)',
      columns: ['', 'CPU us/point', 'process cores', 'main thread', 'main runq wait', 'client cores', 'other load cores'],
      rows: [cpuRow('server', server), cpuRow('baseline', baseline), ['server/baseline', ratio(server.cpuUsPerPoint, baseline.cpuUsPerPoint), '', '', '', '', '']],
    },
    {
      title: `ingest rounds (alternating; median server/baseline ${fmtNum(median(perRound), 2)})`,
      columns: ['round', 'server points/s', 'baseline points/s', 'server/baseline', 'other load (server phase)', 'other load (baseline phase)'],
      rows: perRound.map((r, i) => [
        String(i + 1), fmtInt(server.phasePointsPerSec[i] ?? NaN), fmtInt(baseline.phasePointsPerSec[i] ?? NaN), fmtNum(r, 2),
        fmtNum(server.phaseOtherCores[i] ?? NaN, 2), fmtNum(baseline.phaseOtherCores[i] ?? NaN, 2),
      ]),
    },
  ];
}

export function report(server: LoadResult, baseline: LoadResult, rb: ReadBackResult): Pick<WorkloadResult, 'tables' | 'checks'> {
  const read: ReportTable = {
    title: `read-back: ${fmtInt(rb.points)} points (${fmtNum(rb.bytesOnDisk / 1e6)} MB on disk) from offset 0, batches of 10,000, log opened in ${fmtNum(rb.openMs)} ms`,
    columns: ['', 'points/s', 'points', 'seconds', 'complete'],
    rows: [
      ['raw (wire lines)', fmtInt(rb.raw.pointsPerSec), fmtInt(rb.raw.points), fmtNum(rb.raw.seconds, 2), rb.raw.capped ? 'no (time cap)' : 'yes'],
      ['decoded (decodeLine)', fmtInt(rb.decoded.pointsPerSec), fmtInt(rb.decoded.points), fmtNum(rb.decoded.seconds, 2), rb.decoded.capped ? 'no (time cap)' : 'yes'],
    ],
  };
  const r = server.pointsPerSec / baseline.pointsPerSec;
  const checks: Check[] = [
    { name: 'ingest vs baseline (points/s, whole run)', target: `>= ${MIN_RATIO}`, actual: fmtNum(r, 2), ok: r >= MIN_RATIO },
    { name: 'ingest points/s', target: `>= ${fmtInt(MIN_POINTS_PER_SEC)}`, actual: fmtInt(server.pointsPerSec), ok: server.pointsPerSec >= MIN_POINTS_PER_SEC },
    // Every acknowledged point must be readable after a clean stop; a miss means lost data, not slowness.
    { name: 'acknowledged points readable', target: fmtInt(server.ackedPoints), actual: fmtInt(rb.points), ok: rb.points === server.ackedPoints },
  ];
  return { tables: [...ingestTables(server, baseline), read], checks };
}
