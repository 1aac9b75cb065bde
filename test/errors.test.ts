import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERRORS } from '../src/errors.ts';

/** The reference's error table (copied verbatim from spec/pipeline-api-v2.zh.md). */
function referenceTable(): Map<string, number> {
  const text = readFileSync(new URL('./fixtures/reference-error-table.md', import.meta.url), 'utf8');
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^\|\s*(\d{3})\s*\|\s*(E\d{5}):/gm)) out.set(m[2] as string, Number(m[1]));
  return out;
}

describe('error catalogue', () => {
  it('gives every code of the reference table the reference\'s HTTP status', () => {
    const ref = referenceTable();
    assert.ok(ref.size >= 50, `parsed ${ref.size} codes`);
    for (const [code, status] of ref) {
      const ours = (ERRORS as Record<string, readonly [number, string]>)[code];
      assert.ok(ours, `${code} missing from src/errors.ts`);
      assert.equal(ours[0], status, code);
    }
  });

  it('is listed in docs/errors.md with the same statuses', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    for (const [code, [status]] of Object.entries(ERRORS)) {
      assert.match(doc, new RegExp(`\\|\\s*${code}\\s*\\|\\s*${status}\\s*\\|`), `${code} ${status} not in docs/errors.md`);
    }
  });
});
