import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import type { AccountConfig } from '../config.ts';

/** Looks accounts up by access key. */
export class Accounts {
  private readonly byKey = new Map<string, AccountConfig>();
  constructor(list: readonly AccountConfig[]) {
    for (const a of list) this.byKey.set(a.accessKey, a);
  }
  get(accessKey: string): AccountConfig | undefined {
    return this.byKey.get(accessKey);
  }
  list(): AccountConfig[] {
    return [...this.byKey.values()];
  }
}

export const CREDENTIALS_FILE = 'credentials.json';

/**
 * With no configured account, the server makes one on first start and keeps it
 * in `<dataDir>/credentials.json` (mode 0600), so a new install works without
 * setup. Returns the account and whether it was just created.
 */
export function ensureGeneratedAccount(dataDir: string): { account: AccountConfig; created: boolean } {
  const file = path.join(dataDir, CREDENTIALS_FILE);
  if (existsSync(file)) {
    const a = JSON.parse(readFileSync(file, 'utf8')) as AccountConfig;
    return { account: { id: a.id ?? 'default', accessKey: a.accessKey, secretKey: a.secretKey }, created: false };
  }
  mkdirSync(dataDir, { recursive: true });
  const account: AccountConfig = {
    id: 'default',
    accessKey: randomBytes(15).toString('base64url'),
    secretKey: randomBytes(30).toString('base64url'),
  };
  writeFileSync(file, JSON.stringify(account, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { account, created: true };
}

/** Reads the generated credentials, if any (used by the `sign` command). */
export function readGeneratedAccount(dataDir: string): AccountConfig | undefined {
  const file = path.join(dataDir, CREDENTIALS_FILE);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as AccountConfig) : undefined;
}
