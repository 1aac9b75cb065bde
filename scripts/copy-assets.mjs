// Copies the non-TypeScript files the server reads at run time into dist/.
import { cpSync, readdirSync } from 'node:fs';

cpSync('src/storage/migrations', 'dist/storage/migrations', { recursive: true });
for (const f of readdirSync('src/plugins/jvm').filter((n) => n.endsWith('.java'))) {
  cpSync(`src/plugins/jvm/${f}`, `dist/plugins/jvm/${f}`);
}
