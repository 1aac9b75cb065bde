import { accessSync, constants, existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { dataRoutes } from './api/data.ts';
import { groupRoutes } from './api/groups.ts';
import { genReqId, registerHttp, sendJson } from './api/http.ts';
import { pluginRoutes } from './api/plugins.ts';
import { repoRoutes } from './api/repos.ts';
import { transformRoutes } from './api/transforms.ts';
import { JsPluginRuntime } from './plugins/js-runtime.ts';
import { JvmPluginRuntime, logJvmSandbox } from './plugins/jvm-runtime.ts';
import { PluginService } from './services/plugins.ts';
import { SqlEngine } from './sql/engine.ts';
import { TransformRunner } from './transforms/runner.ts';
import { TransformService } from './transforms/service.ts';
import { StageManager } from './transforms/stages.ts';
import { Accounts, ensureGeneratedAccount } from './auth/accounts.ts';
import type { AccountConfig, Config } from './config.ts';
import type { AppContext } from './context.ts';
import { GroupCapacity } from './services/capacity.ts';
import { RepoService } from './services/repos.ts';
import { createLogStore } from './storage/log/index.ts';
import { MetaStore } from './storage/meta.ts';
import { createLogger } from './telemetry/logger.ts';

export interface BuiltApp {
  app: FastifyInstance;
  ctx: AppContext;
  /** Set when the server generated credentials on this start (printed once by main). */
  generated?: AccountConfig;
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
export async function buildApp(config: Config, opts: { logger?: boolean } = {}): Promise<BuiltApp> {
  const logger = opts.logger === false ? undefined : createLogger(config.logLevel);
  const app = Fastify({
    loggerInstance: logger,
    genReqId,
    requestIdHeader: false,
    bodyLimit: config.maxBodyBytes,
    // Per-request log lines would dominate the log at ingest rates; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
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
  const repos = new RepoService(meta, logs, config);
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
    log: app.log,
    hooks: { groupStateChanged: [(account, group) => runner.groupChanged(account, group)] },
  };
  if (swept) app.log.info({ swept }, 'removed logs of deleted repos');

  let closing = false;
  registerHttp(app, ctx);
  app.get('/health', async (_req, reply) => {
    try {
      if (closing) throw new Error('shutting down');
      accessSync(config.dataDir, constants.W_OK);
      meta.db.prepare('SELECT 1').get();
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
  runner.start();

  const retention = setInterval(() => {
    logs.enforceRetention().catch((err: unknown) => app.log.error({ error: err }, 'retention failed'));
  }, 60_000);
  retention.unref();

  app.addHook('onClose', async () => {
    closing = true;
    clearInterval(retention);
    await runner.close();
    await stages.close();
    await Promise.allSettled([sql.close(), js.close(), jvm.close()]);
    await logs.close();
    meta.close();
  });
  return { app, ctx, generated };
}
