import { setProp } from '../ingest/json-lex.ts';

/** The highlight object of a search (official-extensions 3.4); null and 0 mean the defaults (3.9). */
export interface HighlightSpec {
  pre_tags?: string[] | null;
  post_tags?: string[] | null;
  fields?: Record<string, unknown> | null;
  require_field_match?: boolean | null;
  fragment_size?: number | null;
}

const WORD = /[\p{L}\p{N}_]+/gu;
const DEFAULT_FRAGMENT = 100;

/**
 * Builds a function marking the searched words in a document's string
 * fields: `{field: [fragment]}` for fields with a match. Words are matched
 * case-insensitively (a trailing `*` in the query matches as a prefix);
 * long values are cut to a fragment around the first match.
 */
export function highlighter(spec: HighlightSpec, terms: Map<string, string[]>, strings: readonly string[]): (doc: Record<string, unknown>) => Record<string, string[]> | undefined {
  const pre = spec.pre_tags?.[0] ?? '<em>';
  const post = spec.post_tags?.[0] ?? '</em>';
  const size = spec.fragment_size && spec.fragment_size > 0 ? spec.fragment_size : DEFAULT_FRAGMENT;
  const wanted = Object.keys(spec.fields ?? {});
  const fields = wanted.length === 0 || wanted.includes('*') ? strings : wanted.filter((f) => strings.includes(f));
  const wordsFor = (field: string): string[] => {
    const own = terms.get(field) ?? [];
    const any = spec.require_field_match ? [] : (terms.get('*') ?? []);
    return [...own, ...any].flatMap((t) => t.match(WORD)?.map((w) => w + (t.endsWith('*') ? '*' : '')) ?? []);
  };
  return (doc) => {
    const out: Record<string, string[]> = {};
    for (const f of fields) {
      const words = wordsFor(f);
      const v = f.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' && Object.hasOwn(o, k) ? (o as Record<string, unknown>)[k] : undefined), doc);
      if (typeof v !== 'string' || words.length === 0) continue;
      const frag = mark(v, words, pre, post, size);
      if (frag) setProp(out, f, [frag]);
    }
    return Object.keys(out).length ? out : undefined;
  };
}

function mark(text: string, words: string[], pre: string, post: string, size: number): string | undefined {
  const hits = (w: string): boolean => words.some((t) => (t.endsWith('*') ? w.startsWith(t.slice(0, -1)) : w === t));
  let first = -1;
  const marked = text.replace(WORD, (w, at: number) => {
    if (!hits(w.toLowerCase())) return w;
    if (first < 0) first = at;
    return pre + w + post;
  });
  if (first < 0) return undefined;
  if (text.length <= size) return marked;
  // Cut the fragment from the original text around the first hit, then mark it.
  const start = Math.max(0, first - Math.floor(size / 4));
  return text.slice(start, start + size).replace(WORD, (w) => (hits(w.toLowerCase()) ? pre + w + post : w));
}
