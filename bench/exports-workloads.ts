/**
 * Export sink workloads (listed in run.ts). Each lives in its own
 * bench/exports-*.ts file; this one only names them.
 */
import { runMongoBench } from './exports-mongo.ts';
import { runTsdbBench } from './exports-tsdb.ts';
import type { Workload } from './lib.ts';

export const exportsTsdbWorkload: Workload = {
  name: 'exports-tsdb',
  description: 'points/s into a real influxd through the tsdb sink vs POSTing the same prebuilt line protocol directly',
  run: runTsdbBench,
};

export const exportsMongoWorkload: Workload = {
  name: 'exports-mongo',
  description: 'records/s INSERTed through the mongo sink into the MongoDB wire-protocol stand-in vs bulkWrite of the same documents directly',
  run: runMongoBench,
};
