/**
 * Streaming transform workloads (listed in run.ts): run throughput against
 * DuckDB alone, scheduler latency, and JavaScript plugin throughput. Each
 * lives in its own bench/transform-*.ts file; this one only names them.
 */
import type { Workload } from './lib.ts';
import { runLatency } from './transform-latency.ts';
import { runPluginThroughput } from './transform-plugin.ts';
import { runThroughput } from './transform-throughput.ts';

export const transformThroughputWorkload: Workload = {
  name: 'transform-throughput',
  description: 'one runNow over 1M points (group-by and projection SQL) vs DuckDB alone on the same rows in memory, with a step breakdown',
  run: runThroughput,
};

export const transformLatencyWorkload: Workload = {
  name: 'transform-latency',
  description: 'real server, 5s transform: 200 OK of a push -> readable in the destination (p50/p99/max)',
  run: runLatency,
};

export const pluginThroughputWorkload: Workload = {
  name: 'plugin-throughput',
  description: 'trivial-map JavaScript plugin: whole transform run and JsPluginRuntime.run alone, points/s',
  run: runPluginThroughput,
};
