import { accessSync, constants, existsSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import path from 'node:path';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { dataRoutes } from './api/data.ts';
import { exportRoutes } from './api/exports.ts';
import { batchRoutes } from './api/batch.ts';
import { datasourceRoutes } from './api/datasources.ts';
import { jobRoutes } from './api/jobs.ts';
import { variableRoutes } from './api/variables.ts';
import { groupRoutes } from './api/groups.ts';
import { logdbRoutes } from './api/logdb.ts';
import { LogDb } from './logstore/store.ts';
import { genReqId, httpServerOptions, registerHttp, sendJson } from './api/http.ts';
import { pluginRoutes } from './api/plugins.ts';
import { repoRoutes } from './api/repos.ts';
import { transformRoutes } from './api/transforms.ts';
import { JsPluginRuntime } from './plugins/js-runtime.ts';
import { JvmPluginRuntime, logJvmSandbox } from './plugins/jvm-runtime.ts';
import type { Clock } from './offline/scheduler.ts';
import { OfflineService } from './offline/service.ts';
import { PluginService } from './services/plugins.ts';
import { SqlEngine } from './sql/engine.ts';
import { ExportEngine } from './exports/engine.ts';
import { ExportService } from './exports/service.ts';
import { TransformRunner } from './transforms/runner.ts';
import { TransformService } from './transforms/service.ts';
import { StageManager } from './transforms/stages.ts';
import { Accounts, ensureGeneratedAccount } from './auth/accounts.ts';
import type { AccountConfig, Config } from './config.ts';
import type { AppContext } from './context.ts';
import { GroupCapacity } from './services/capacity.ts';
import { RepoService } from './services/repos.ts';
import { PARSE_WORKER_MIN_BYTES, ParsePool } from './ingest/parse-pool.ts';
import { createLogStore } from './storage/log/index.ts';
import { MetaStore } from './storage/meta.ts';
import { createLogger } from './telemetry/logger.ts';
import { registerPipelineCollectors } from './telemetry/collectors.ts';
import { Metrics } from './telemetry/metrics.ts';
import { metricsRoutes, registerRequestMetrics } from './api/metrics.ts';

export interface BuiltApp {
  app: FastifyInstance;
  ctx: AppContext;
  /** Set when the server generated credentials on this start (printed once by main). */
  generated?: AccountConfig;
  /** Offline datasources, jobs and their scheduler. */
  offline: OfflineService;
}

/** A reason when the data directory's file system cannot take one more request of the largest size. */
function diskProblem(config: Config): string | undefined {
  const fs = statfsSync(config.dataDir);
  const free = fs.bavail * fs.bsize;
  return free < config.maxBodyBytes ? `disk full: ${free} bytes free in the data directory, less than maxBodySize` : undefined;
}

/** Removes repo log directories whose repo no longer exists (a crash between metadata and data delete). */
function sweepOrphanLogs(logDir: string, meta: MetaStore): number {
  if (!existsSync(logDir)) return 0;
  const live = new Set(meta.allRepos().map((r) => RepoService.logKey(r.account, r)));
  let removed = 0;
  for (const account of readdirSync(logDir)) {
    for (const entry of readdirSync(path.join(logDir, account))) {
      if (live.has(`${account}/${entry}`)) continue;
      rmSync(path.join(logDir, account, entry), { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

/**
 * Builds the server: storage, auth, routes. Does not listen; tests call
 * `app.inject()` or `app.listen({port: 0})`. Closing the app releases everything.
 */
export async function buildApp(config: Config, opts: { logger?: boolean; clock?: Clock; logStream?: { write(line: string): void } } = {}): Promise<BuiltApp> {
  const logger = opts.logger === false ? undefined : createLogger(config.logLevel, opts.logStream);
  const app = Fastify({
    loggerInstance: logger,
    genReqId,
    requestIdHeader: false,
    bodyLimit: config.maxBodyBytes,
    // Per-request log lines would dominate the log at ingest rates; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    // Close only idle keep-alive connections on close; requests in progress finish (main.ts bounds the wait).
    forceCloseConnections: 'idle',
    ...httpServerOptions(),
  }) as unknown as FastifyInstance;

  let generated: AccountConfig | undefined;
  let accountList = config.accounts;
  if (accountList.length === 0) {
    const g = ensureGeneratedAccount(config.dataDir);
    accountList = [{ ...g.account, jarPlugins: config.jarPlugins }];
    if (g.created) generated = g.account;
  }

  const meta = new MetaStore(path.join(config.dataDir, 'meta.db'));
  const logDir = path.join(config.dataDir, 'repos');
  const swept = sweepOrphanLogs(logDir, meta);
  const logs = createLogStore({
    dir: logDir,
    fsync: config.fsync === 'interval' ? { mode: 'interval', intervalMs: config.fsyncIntervalMs } : { mode: config.fsync },
    segmentBytes: config.segmentBytes,
    retentionMs: config.retentionMs,
    retentionBytes: config.retentionBytes,
  });
  const parsePool = new ParsePool(config.ingestWorkers, PARSE_WORKER_MIN_BYTES);
  const repos = new RepoService(meta, logs, config, parsePool);
  const sql = await SqlEngine.create({ memoryLimit: config.sqlMemory, threads: config.sqlThreads, tempDir: path.join(config.dataDir, 'tmp', 'duckdb') });
  const js = new JsPluginRuntime({ workers: config.pluginWorkers, timeoutMs: config.pluginTimeoutMs, memoryMb: config.pluginMemoryMb });
  const jvm = new JvmPluginRuntime({ timeoutMs: config.pluginTimeoutMs, memoryMb: Math.max(64, config.pluginMemoryMb), workDir: path.join(config.dataDir, 'tmp', 'jvm'), sandbox: config.jvmSandbox });
  const jarAccounts = new Set(accountList.filter((a) => a.jarPlugins === true).map((a) => a.id));
  const plugins = new PluginService(meta, path.join(config.dataDir, 'plugins'), js, jvm, { maxBytes: config.pluginMaxBytes, jarAllowed: (id) => jarAccounts.has(id) });
  if (jarAccounts.size) logJvmSandbox(jvm, app.log);
  const stages = new StageManager(meta, repos, sql, { aheadBytes: config.transformStage, log: app.log });
  repos.appended.push((account, repo) => stages.notify(account, repo));
  const capacity = new GroupCapacity(meta, config.transformSlots);
  const runner = new TransformRunner(
    { meta, repos, sql, plugins, stages, maxPointsPerRun: config.transformBatch, maxOutputPoints: config.transformOutput, maxOutputBytes: config.transformOutputBytes, sqlTimeoutMs: config.sqlTimeoutMs, failpoint: process.env.PIPELINE_FAILPOINT },
    { capacity, firstRunDelayMs: 1000, log: app.log },
  );
  const exportEngine = new ExportEngine({ meta, repos, config, capacity, log: app.log });
  repos.appended.push((account, repo) => exportEngine.notify(account, repo));
  const metrics = new Metrics();
  repos.pushed.push((account, repo, points, bytes) => metrics.pushed(account, repo, points, bytes));
  repos.deleted.push((account, repo) => metrics.repoDeleted(account, repo));
  const ctx: AppContext = {
    config,
    accounts: new Accounts(accountList),
    meta,
    logs,
    repos,
    plugins,
    runner,
    stages,
    capacity,
    transforms: new TransformService(meta, repos, sql, plugins, runner),
    exports: new ExportService(meta, repos, exportEngine, config),
    exportEngine,
    log: app.log,
    metrics,
    hooks: { groupStateChanged: [(account, group) => runner.groupChanged(account, group), (account) => exportEngine.groupChanged(account)] },
  };
  if (swept) app.log.info({ swept }, 'removed logs of deleted repos');
  const logdb = new LogDb({ dir: path.join(config.dataDir, 'logdb'), regions: config.regions, writer: { size: config.logWriters } });
  logdb.register(config.dataDir);

  let closing = false;
  registerHttp(app, ctx);
  registerRequestMetrics(app, ctx);
  app.get('/health', async (_req, reply) => {
    try {
      if (closing) throw new Error('shutting down');
      accessSync(config.dataDir, constants.W_OK);
      meta.db.prepare('SELECT 1').get();
      const problem = repos.writeProblem() ?? diskProblem(config);
      if (problem) throw new Error(problem);
    } catch (err) {
      return reply.code(503).header('content-type', 'application/json').send(JSON.stringify({ status: 'unavailable', error: (err as Error).message }));
    }
    return sendJson(reply, { status: 'ok' });
  });
  await app.register(async (scope) => groupRoutes(scope, ctx));
  await app.register(async (scope) => repoRoutes(scope, ctx));
  await app.register(async (scope) => dataRoutes(scope, ctx));
  await app.register(async (scope) => transformRoutes(scope, ctx));
  await app.register(async (scope) => pluginRoutes(scope, ctx));
  await app.register(async (scope) => exportRoutes(scope, ctx));
  await app.register(async (scope) => logdbRoutes(scope, ctx, logdb));
  const offline = new OfflineService({ config, db: meta.db, accounts: ctx.accounts, log: app.log, clock: opts.clock });
  await app.register(async (scope) => datasourceRoutes(scope, ctx, offline));
  await app.register(async (scope) => jobRoutes(scope, ctx, offline));
  await app.register(async (scope) => variableRoutes(scope, ctx, offline));
  await app.register(async (scope) => batchRoutes(scope, ctx, offline));
  await app.register(async (scope) => metricsRoutes(scope, ctx));
  registerPipelineCollectors(metrics, {
    transforms: () => runner.metrics(),
    exports: () => exportEngine.metrics(),
    scheduler: () => offline.scheduler.metrics(),
    activeRuns: () => offline.store.activeRuns(),
  });
  runner.start();
  exportEngine.start();
  offline.start();

  const retention = setInterval(() => {
    logs.enforceRetention().catch((err: unknown) => app.log.error({ error: err }, 'retention failed'));
    logdb.enforceRetention().catch((err: unknown) => app.log.error({ error: err }, 'log store retention failed'));
  }, 60_000);
  retention.unref();

  app.addHook('onClose', async () => {
    closing = true;
    clearInterval(retention);
    await Promise.all([runner.close(), exportEngine.close(), offline.close()]);
    await stages.close();
    await Promise.allSettled([sql.close(), js.close(), jvm.close(), parsePool.close()]);
    await logs.close();
    await logdb.close();
    meta.close();
  });
  return { app, ctx, generated, offline };
}
