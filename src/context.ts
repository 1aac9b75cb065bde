import type { FastifyBaseLogger } from 'fastify';
import type { Accounts } from './auth/accounts.ts';
import type { Config } from './config.ts';
import type { ExportEngine } from './exports/engine.ts';
import type { ExportService } from './exports/service.ts';
import type { LogStore } from './storage/log/types.ts';
import type { MetaStore } from './storage/meta.ts';
import type { Metrics } from './telemetry/metrics.ts';
import type { GroupCapacity } from './services/capacity.ts';
import type { PluginService } from './services/plugins.ts';
import type { RepoService } from './services/repos.ts';
import type { TransformRunner } from './transforms/runner.ts';
import type { TransformService } from './transforms/service.ts';
import type { StageManager } from './transforms/stages.ts';

/** Shared resources of one server instance, built once in buildApp(). */
export interface AppContext {
  config: Config;
  accounts: Accounts;
  meta: MetaStore;
  logs: LogStore;
  repos: RepoService;
  plugins: PluginService;
  transforms: TransformService;
  runner: TransformRunner;
  /** Sources of SQL transforms staged in DuckDB ahead of their runs. */
  stages: StageManager;
  /** Resource-group run capacity shared by transforms and exports. */
  capacity: GroupCapacity;
  /** Exports: the API's domain service and the delivery engine. */
  exports: ExportService;
  exportEngine: ExportEngine;
  log: FastifyBaseLogger;
  /** Prometheus registry of this instance (GET /metrics). */
  metrics: Metrics;
  /** Hooks later components (transform runner, exports) register for lifecycle events. */
  hooks: LifecycleHooks;
}

/** Events that runners subscribe to, so API code never imports runner code. */
export interface LifecycleHooks {
  groupStateChanged: Array<(account: string, group: string) => void>;
}
