/**
 * `npm run openapi`: builds the server on a temporary data dir, reads the
 * routes it registered (with their schemas) and writes docs/openapi.json.
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '../src/app.ts';
import { openApiDocument } from '../src/api/openapi.ts';
import { routeCatalog } from '../src/api/schema.ts';
import { loadConfig } from '../src/config.ts';

const root = path.resolve(import.meta.dirname, '..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'openapi-'));
try {
  const config = loadConfig({}, { dataDir: dir, accounts: [{ id: 'openapi', accessKey: 'openapi-ak', secretKey: 'openapi-secret-key-0123456789' }], logLevel: 'silent' });
  const { app } = await buildApp(config, { logger: false });
  await app.ready();
  const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const doc = openApiDocument(routeCatalog(app), version);
  await app.close();
  const out = path.join(root, 'docs', 'openapi.json');
  writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
  console.log(`wrote ${path.relative(root, out)}: ${Object.keys(doc.paths as object).length} paths`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
