#!/usr/bin/env node
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildApp } from './app.ts';
import { readGeneratedAccount } from './auth/accounts.ts';
import { authorization } from './auth/signature.ts';
import { CONFIG_KEYS, ConfigError, loadConfig, type Config } from './config.ts';

const HELP = `pipeline-server: a self-hosted data pipeline speaking the Pandora Pipeline v2 API

Usage:
  pipeline-server [serve]                      run the server (default)
  pipeline-server sign METHOD PATH [TYPE]      print an Authorization header for one request
                                               (TYPE = the request's Content-Type, if it sends one)
  pipeline-server --help                       this text

Configuration (environment variable, or the same key in the JSON file named by
PIPELINE_CONFIG, which may also list "accounts": [{"id","accessKey","secretKey"}]):
${CONFIG_KEYS.map(([key, env, def, what]) => `  ${env.padEnd(26)} ${what} (key "${key}", default ${def === '' ? 'none' : JSON.stringify(def)})`).join('\n')}

With no account configured, the first start creates one, stores it in
<dataDir>/credentials.json (mode 0600) and prints it once.
`;

/** Refuses to run two servers on one data directory (a stale lock of a dead process is taken over). */
function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'LOCK');
  try {
    const pid = Number(readFileSync(file, 'utf8'));
    if (pid && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        throw new Error(`data directory ${dir} is in use by process ${pid}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  writeFileSync(file, String(process.pid));
  return () => rmSync(file, { force: true });
}

async function serve(config: Config): Promise<void> {
  const unlock = lockDataDir(config.dataDir);
  const { app, generated } = await buildApp(config);
  if (generated) {
    process.stdout.write(
      `\nNo account configured: created one (stored in ${path.join(config.dataDir, 'credentials.json')}, mode 0600).\n` +
        `  access key: ${generated.accessKey}\n  secret key: ${generated.secretKey}\n` +
        `Sign requests with: node dist/main.js sign METHOD PATH [CONTENT_TYPE]\n\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal: the operator does not want to wait.
      app.log.warn({ signal }, 'second signal: exiting now');
      unlock();
      process.exit(1);
    }
    stopping = true;
    app.log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down: no new connections, finishing requests in progress');
    // Requests still running at the deadline lose their connection; the runners then stop at a safe point.
    const deadline = setTimeout(() => {
      app.log.warn('shutdown timeout passed: closing the connections of requests still in progress');
      app.server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    deadline.unref();
    app.close().then(
      () => { unlock(); process.exit(0); },
      (err: unknown) => { app.log.error({ error: err }, 'shutdown failed'); process.exit(1); },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await app.listen({ port: config.port, host: config.host });
}

function signCommand(config: Config, args: string[]): void {
  const [method, reqPath, contentType] = args;
  if (!method || !reqPath) throw new Error('usage: pipeline-server sign METHOD PATH [CONTENT_TYPE]');
  const account = config.accounts[0] ?? readGeneratedAccount(config.dataDir);
  if (!account) throw new Error(`no account configured and no ${path.join(config.dataDir, 'credentials.json')} yet: start the server once`);
  const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
  process.stdout.write(authorization(account.accessKey, account.secretKey, { method, path: reqPath.split('?')[0] ?? '', headers }) + '\n');
}

async function main(argv: string[]): Promise<void> {
  const [cmd = 'serve', ...rest] = argv;
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const config = loadConfig();
  if (cmd === 'serve') return serve(config);
  if (cmd === 'sign') return signCommand(config, rest);
  throw new Error(`unknown command "${cmd}" (see --help)`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
  process.exit(1);
});
