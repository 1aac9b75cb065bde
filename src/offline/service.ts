/**
 * The offline half of the server, built once in buildApp: datasources,
 * variables, jobs, job exports, the scheduler and run execution.
 */
import path from 'node:path';
import type { Config } from '../config.ts';
import type { Accounts } from '../auth/accounts.ts';
import { DatasourceService, type OfflineDeps } from './datasources.ts';
import { OfflineStore } from './store.ts';
import type Database from 'better-sqlite3';
import type { FastifyBaseLogger } from 'fastify';

export interface OfflineOptions {
  config: Config;
  db: Database.Database;
  accounts: Accounts;
  log: FastifyBaseLogger;
}

export class OfflineService {
  readonly store: OfflineStore;
  readonly deps: OfflineDeps;
  readonly datasources: DatasourceService;

  constructor(opts: OfflineOptions) {
    const { config } = opts;
    this.store = new OfflineStore(opts.db);
    this.deps = {
      config,
      store: this.store,
      memoryLimit: config.sqlMemory,
      threads: config.sqlThreads,
      tmpDir: path.join(config.dataDir, 'tmp', 'offline'),
      account: (id) => {
        const a = opts.accounts.list().find((x) => x.id === id);
        if (!a) throw new Error(`unknown account ${id}`);
        return a;
      },
    };
    this.datasources = new DatasourceService(this.deps);
  }

  async close(): Promise<void> {}
}
