import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Minimal JSON: objects become LinkedHashMap, arrays ArrayList, integers Long (BigInteger when larger), other numbers Double. */
final class PluginJson {
  private static final char[] HEX = "0123456789abcdef".toCharArray();
  private static final BigInteger SAFE = BigInteger.valueOf(9007199254740991L);
  private final String s;
  private int i;

  PluginJson(String s) { this.s = s; }

  Object parse() {
    Object v = value(0);
    skip();
    if (i != s.length()) throw error("trailing characters");
    return v;
  }

  private Object value(int depth) {
    if (depth > 512) throw error("nesting too deep");
    skip();
    if (i >= s.length()) throw error("unexpected end");
    char c = s.charAt(i);
    switch (c) {
      case '{': {
        i++;
        Map<String, Object> m = new LinkedHashMap<>();
        skip();
        if (peek('}')) return m;
        do {
          skip();
          String key = string();
          skip();
          expect(':');
          m.put(key, value(depth + 1));
          skip();
        } while (consume(','));
        expect('}');
        return m;
      }
      case '[': {
        i++;
        List<Object> a = new ArrayList<>();
        skip();
        if (peek(']')) return a;
        do { a.add(value(depth + 1)); skip(); } while (consume(','));
        expect(']');
        return a;
      }
      case '"': return string();
      case 't': word("true"); return Boolean.TRUE;
      case 'f': word("false"); return Boolean.FALSE;
      case 'n': word("null"); return null;
      default: return number();
    }
  }

  private String string() {
    expect('"');
    StringBuilder b = new StringBuilder();
    while (true) {
      if (i >= s.length()) throw error("unterminated string");
      char c = s.charAt(i++);
      if (c == '"') return b.toString();
      if (c != '\\') { b.append(c); continue; }
      char e = s.charAt(i++);
      switch (e) {
        case 'n': b.append('\n'); break;
        case 't': b.append('\t'); break;
        case 'r': b.append('\r'); break;
        case 'b': b.append('\b'); break;
        case 'f': b.append('\f'); break;
        case 'u': b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
        default: b.append(e);
      }
    }
  }

  private Object number() {
    int start = i;
    boolean integral = true;
    while (i < s.length()) {
      char c = s.charAt(i);
      if (c == '.' || c == 'e' || c == 'E') integral = false;
      else if (!(c == '-' || c == '+' || (c >= '0' && c <= '9'))) break;
      i++;
    }
    String text = s.substring(start, i);
    if (text.isEmpty()) throw error("unexpected character");
    if (!integral) return Double.parseDouble(text);
    BigInteger big = new BigInteger(text);
    return big.bitLength() < 64 ? (Object) big.longValue() : big;
  }

  private void word(String w) { if (!s.startsWith(w, i)) throw error("unexpected token"); i += w.length(); }
  private void skip() { while (i < s.length() && s.charAt(i) <= ' ') i++; }
  private boolean peek(char c) { if (i < s.length() && s.charAt(i) == c) { i++; return true; } return false; }
  private boolean consume(char c) { return peek(c); }
  private void expect(char c) { if (!peek(c)) throw error("expected '" + c + "'"); }
  private IllegalArgumentException error(String what) { return new IllegalArgumentException("bad JSON at " + i + ": " + what); }

  /** Writes v as JSON. Integers beyond 2^53 become strings so JavaScript keeps every digit. */
  static void write(StringBuilder b, Object v) {
    if (v == null) { b.append("null"); return; }
    if (v instanceof String || v instanceof Character) { quote(b, v.toString()); return; }
    if (v instanceof Boolean) { b.append(v.toString()); return; }
    if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte || v instanceof BigInteger) {
      BigInteger n = v instanceof BigInteger ? (BigInteger) v : BigInteger.valueOf(((Number) v).longValue());
      if (n.abs().compareTo(SAFE) > 0) quote(b, n.toString()); else b.append(n.toString());
      return;
    }
    if (v instanceof Double || v instanceof Float) {
      double d = ((Number) v).doubleValue();
      if (Double.isNaN(d) || Double.isInfinite(d)) b.append("null"); else b.append(d);
      return;
    }
    if (v instanceof BigDecimal) { b.append(((BigDecimal) v).toString()); return; }
    if (v instanceof Number) { write(b, ((Number) v).doubleValue()); return; }
    if (v instanceof Map) {
      b.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
        if (!first) b.append(',');
        first = false;
        quote(b, String.valueOf(e.getKey()));
        b.append(':');
        write(b, e.getValue());
      }
      b.append('}');
      return;
    }
    if (v instanceof Iterable) {
      b.append('[');
      boolean first = true;
      for (Object o : (Iterable<?>) v) { if (!first) b.append(','); first = false; write(b, o); }
      b.append(']');
      return;
    }
    if (v.getClass().isArray()) {
      b.append('[');
      for (int k = 0; k < Array.getLength(v); k++) { if (k > 0) b.append(','); write(b, Array.get(v, k)); }
      b.append(']');
      return;
    }
    quote(b, v.toString());
  }

  static void quote(StringBuilder b, String s) {
    b.append('"');
    for (int k = 0; k < s.length(); k++) {
      char c = s.charAt(k);
      switch (c) {
        case '"': b.append("\\\""); break;
        case '\\': b.append("\\\\"); break;
        case '\n': b.append("\\n"); break;
        case '\r': b.append("\\r"); break;
        case '\t': b.append("\\t"); break;
        default:
          // Escaping surrogates keeps lone halves intact through the UTF-8 pipe.
          if (c < 0x20 || Character.isSurrogate(c)) {
            b.append("\\u");
            for (int shift = 12; shift >= 0; shift -= 4) b.append(HEX[(c >> shift) & 0xf]);
          } else {
            b.append(c);
          }
      }
    }
    b.append('"');
  }
}
