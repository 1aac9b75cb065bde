/**
 * Scrape-time collectors: each reads the state the API's status fields come
 * from (transform runner, export engine, offline scheduler and run table)
 * and rewrites its metric families, so the hot paths do no extra work and
 * deleted resources leave the exposition with their next scrape.
 */
import type { Counter, Gauge } from 'prom-client';
import type { ExportMetrics } from '../exports/engine.ts';
import type { SchedulerMetrics } from '../offline/scheduler.ts';
import type { TransformMetrics } from '../transforms/runner.ts';
import { mirroredCounter, mirroredGauge, type Metrics } from './metrics.ts';

/** Where the collectors read from; buildApp passes the live components. */
export interface PipelineSources {
  transforms(): Promise<TransformMetrics[]>;
  exports(): ExportMetrics[];
  scheduler(): SchedulerMetrics;
  /** Runs now Ready or Running, per job (from the run table). */
  activeRuns(): Array<{ account: string; job: string; status: string; runs: number }>;
}

type Family<L extends string> = Counter<L> | Gauge<L>;

/** Resets a family and sets one value per item (counters mirror a total: reset, then inc by it). */
function fill<T, L extends string>(m: Family<L>, items: readonly T[], labels: (x: T) => Record<L, string>, value: (x: T) => number | null): void {
  m.reset();
  for (const x of items) {
    const v = value(x);
    if (v === null) continue;
    if ('set' in m) m.set(labels(x), v);
    else m.inc(labels(x), v);
  }
}

/** Registers the transform, export and offline metric families and their collectors. */
export function registerPipelineCollectors(metrics: Metrics, src: PipelineSources): void {
  const reg = metrics.registry;
  const T = ['account', 'repo', 'transform'] as const;
  const tRuns = mirroredCounter(reg, 'pipeline_transform_runs_total', 'Transform runs since the server started (each scheduled or forced run, including those that found nothing new)', T);
  const tFailures = mirroredCounter(reg, 'pipeline_transform_failures_total', 'Transform runs that failed since the server started', T);
  const tLastRun = mirroredGauge(reg, 'pipeline_transform_last_run_timestamp_seconds', 'When the last run that read points (or failed) started, Unix seconds; absent before one', T);
  const tLag = mirroredGauge(reg, 'pipeline_transform_lag_points', 'Points of the source repo the transform has not read yet', T);
  const tState = mirroredGauge(reg, 'pipeline_transform_state', 'Always 1, labelled with the transform\'s state (running, paused, error)', [...T, 'state']);
  metrics.collect(async () => {
    const all = await src.transforms();
    const l = (t: TransformMetrics): Record<(typeof T)[number], string> => ({ account: t.account, repo: t.repo, transform: t.name });
    fill(tRuns, all, l, (t) => t.runs);
    fill(tFailures, all, l, (t) => t.failedRuns);
    fill(tLastRun, all, l, (t) => (t.lastRunTime === null ? null : t.lastRunTime / 1000));
    fill(tLag, all, l, (t) => t.lagPoints);
    fill(tState, all, (t) => ({ ...l(t), state: t.state }), () => 1);
  });

  const E = ['account', 'repo', 'export'] as const;
  const eDelivered = mirroredCounter(reg, 'pipeline_export_delivered_points_total', 'Points the export\'s target acknowledged (the total GET reports as delivered.total)', E);
  const eDead = mirroredCounter(reg, 'pipeline_export_dead_lettered_points_total', 'Points the target refused for good and that went to the dead-letter repo', E);
  const eOmitted = mirroredCounter(reg, 'pipeline_export_omitted_points_total', 'Points the target refused for good and that were dropped (dead letters off)', E);
  const eFailures = mirroredCounter(reg, 'pipeline_export_failures_total', 'Failed deliveries (or sessions) since the server started', E);
  const eRetries = mirroredCounter(reg, 'pipeline_export_retries_total', 'Deliveries tried again after a failure and its backoff, since the server started', E);
  const eConsecutive = mirroredGauge(reg, 'pipeline_export_consecutive_failures', 'Failures since the last success (GET: consecutiveFailures)', E);
  const eLag = mirroredGauge(reg, 'pipeline_export_lag_points', 'Points of the repo not yet acknowledged by the target', E);
  const eState = mirroredGauge(reg, 'pipeline_export_state', 'Always 1, labelled with the export\'s state (running, paused, retrying, error) and type', [...E, 'type', 'state']);
  metrics.collect(() => {
    const all = src.exports();
    const l = (e: ExportMetrics): Record<(typeof E)[number], string> => ({ account: e.account, repo: e.repo, export: e.name });
    fill(eDelivered, all, l, (e) => e.delivered);
    fill(eDead, all, l, (e) => e.deadLettered);
    fill(eOmitted, all, l, (e) => e.omitted);
    fill(eFailures, all, l, (e) => e.failures);
    fill(eRetries, all, l, (e) => e.retries);
    fill(eConsecutive, all, l, (e) => e.consecutiveFailures);
    fill(eLag, all, l, (e) => e.lagPoints);
    fill(eState, all, (e) => ({ ...l(e), type: e.type, state: e.state }), () => 1);
  });

  const J = ['account', 'job', 'status'] as const;
  const oRuns = mirroredCounter(reg, 'pipeline_offline_runs_total', 'Offline job runs that ended since the server started, by final status (Successful, Failed, Canceled)', J);
  const oActive = mirroredGauge(reg, 'pipeline_offline_runs_active', 'Offline job runs now Ready (queued) or Running', J);
  const oQueue = mirroredGauge(reg, 'pipeline_offline_queue_length', 'Batches waiting for a run slot or behind their job\'s previous batch', []);
  const oRunning = mirroredGauge(reg, 'pipeline_offline_running', 'Offline job runs executing now (at most offlineSlots)', []);
  metrics.collect(() => {
    const s = src.scheduler();
    fill(oRuns, s.finished, (f) => ({ account: f.account, job: f.job, status: f.status }), (f) => f.runs);
    fill(oActive, src.activeRuns(), (r) => ({ account: r.account, job: r.job, status: r.status }), (r) => r.runs);
    oQueue.set(s.queued);
    oRunning.set(s.running);
  });
}
