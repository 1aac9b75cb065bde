/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) by self time: the top
 * functions and the share per source file, so a bench run can say where the
 * server's CPU goes without opening DevTools.
 * Standalone: npx tsx bench/profile.ts FILE.cpuprofile [TOP] [POINTS]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** Time outside JS and GC: the event loop waiting (idle). */
  idleMs: number;
  functions: Array<{ name: string; where: string; selfMs: number; pct: number }>;
  files: Array<{ file: string; selfMs: number; pct: number }>;
}

/** Short location: repo-relative for our code, package name for node_modules, as is for node: internals. */
function shortUrl(url: string, root: string): string {
  if (url === '') return '(native/vm)';
  const p = url.startsWith('file://') ? new URL(url).pathname : url;
  const nm = p.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = p.slice(nm + 14).split('/');
    return `npm:${parts.slice(0, parts[0]?.startsWith('@') ? 2 : 1).join('/')}`;
  }
  // Compiled by bench/server.ts into <tmp>/pipeline-bench-build-*/{dist,baseline}/: name the source instead.
  const built = /\/pipeline-bench-build-[^/]+\/(dist|baseline)\/(.*)$/.exec(p);
  if (built) return `${built[1] === 'dist' ? 'src' : 'bench'}/${built[2] ?? ''}`;
  const dist = p.indexOf('/dist/');
  if (dist >= 0) return `src/${p.slice(dist + 6)}`;
  return p.startsWith(root) ? path.relative(root, p) : p;
}

export function summarise(file: string, root: string, top = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  prof.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const files = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)?.callFrame;
    if (!cf) continue;
    totalUs += us;
    if (cf.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = shortUrl(cf.url, root);
    const name = cf.functionName || '(anonymous)';
    const key = `${name}|${where}|${cf.lineNumber}`;
    const fn = fns.get(key) ?? { name, where: cf.url ? `${where}:${cf.lineNumber + 1}` : where, us: 0 };
    fn.us += us;
    fns.set(key, fn);
    files.set(where, (files.get(where) ?? 0) + us);
  }
  const busy = totalUs - idleUs;
  const pct = (us: number): number => (busy > 0 ? (100 * us) / busy : 0);
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    functions: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: f.us / 1000, pct: pct(f.us) })),
    files: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([f, us]) => ({ file: f, selfMs: us / 1000, pct: pct(us) })),
  };
}

/**
 * Text lines of a summary; percentages are of busy (non-idle) time. With
 * `points` (what the process handled while profiled) each line also shows
 * nanoseconds per point, which compares across runs and processes.
 */
export function formatSummary(s: ProfileSummary, points?: number): string[] {
  const perPoint = (ms: number): string => (points ? `${((ms * 1e6) / points).toFixed(1).padStart(6)} ns/pt  ` : '');
  const busyMs = s.totalMs - s.idleMs;
  const out = [
    `${(s.totalMs / 1000).toFixed(1)} s sampled, ${((100 * s.idleMs) / Math.max(1, s.totalMs)).toFixed(0)}% idle, busy ${perPoint(busyMs).trim() || `${busyMs.toFixed(0)} ms`}; shares are of busy time`,
    'top self time by function:',
  ];
  for (const f of s.functions) out.push(`  ${f.pct.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${perPoint(f.selfMs)}${f.name}  (${f.where})`);
  out.push('self time by file:');
  for (const f of s.files) out.push(`  ${f.pct.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${perPoint(f.selfMs)}${f.file}`);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top, points] = process.argv.slice(2);
  if (!file) throw new Error('usage: npx tsx bench/profile.ts FILE.cpuprofile [TOP] [POINTS]');
  for (const line of formatSummary(summarise(file, process.cwd(), Number(top ?? 25)), points ? Number(points) : undefined)) console.log(line);
}
