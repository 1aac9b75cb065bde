/** Builds Java plugin jars for tests from Java source with the JDK's javac and jar. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Compiles `sources` (path under the source root -> text) into a jar and returns its bytes. */
export function buildJar(dir: string, name: string, sources: Record<string, string>): Buffer {
  const root = mkdtempSync(path.join(dir, `${name}-`));
  const files = Object.entries(sources).map(([file, text]) => {
    const p = path.join(root, 'src', file);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, text);
    return p;
  });
  const classes = path.join(root, 'classes');
  execFileSync('javac', ['-encoding', 'UTF-8', '-nowarn', '-d', classes, ...files]);
  const jar = path.join(root, `${name}.jar`);
  execFileSync('jar', ['cf', jar, '-C', classes, '.']);
  return readFileSync(jar);
}

/** A jar of one class from test/fixtures/plugins/java/com/example/<cls>.java. */
export function fixtureJar(dir: string, cls: string): Buffer {
  const src = new URL(`./fixtures/plugins/java/com/example/${cls}.java`, import.meta.url).pathname;
  return buildJar(dir, cls, { [`com/example/${cls}.java`]: readFileSync(src, 'utf8') });
}
