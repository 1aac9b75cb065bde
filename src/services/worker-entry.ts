import { Worker, type WorkerOptions } from 'node:worker_threads';

/** True when running from the TypeScript sources under tsx (tests, benches, `npm run dev`); false from dist/. */
export const UNDER_TSX = import.meta.url.endsWith('.ts');

/**
 * Starts a worker thread on the module `name` next to `base` (pass the
 * caller's `import.meta.url`): `name.ts` under tsx, `name.js` in dist/.
 * Node 20 does not apply `--import tsx` to a worker's entry module, so under
 * tsx a small eval'd bootstrap loads it through tsx's API instead.
 */
export function startWorker(base: string, name: string, opts: Omit<WorkerOptions, 'eval'> = {}): Worker {
  const href = new URL(`./${name}${UNDER_TSX ? '.ts' : '.js'}`, base).href;
  if (!UNDER_TSX) return new Worker(new URL(href), opts);
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => t.tsImport(${JSON.stringify(href)}, ${JSON.stringify(href)}))`;
  return new Worker(boot, { ...opts, eval: true });
}
