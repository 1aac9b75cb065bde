/** The `lucene` package (query-string parser) ships no types; only parse() is used. */
declare module 'lucene' {
  const lucene: { parse(query: string): unknown };
  export default lucene;
}
