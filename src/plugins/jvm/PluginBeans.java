import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A contract violation ("invalid": the package can never work) or a failed run ("run"). */
final class HostFailure extends Exception {
  private static final long serialVersionUID = 1L;
  final String kind;
  HostFailure(String kind, String message) { super(message); this.kind = kind; }
}

/**
 * The official Pandora Java plugin contract: beans userWrite.bean.SourceData
 * (one field per source repo field, date as java.sql.Timestamp) and
 * userWrite.bean.OutputData, and a parse(SourceData) method returning
 * List<OutputData> (a single OutputData or null are accepted too). Beans are
 * filled and read by field name through reflection, so they need neither
 * getters nor setters.
 */
final class PluginBeans {
  static final String SOURCE = "userWrite.bean.SourceData";
  static final String OUTPUT = "userWrite.bean.OutputData";

  private final String className;
  private final Object instance;
  private final Method parse;
  private final Constructor<?> newSource;
  private final Class<?> output;
  private final Field[] in;
  private final Field[] out;

  private PluginBeans(String className, Object instance, Method parse, Constructor<?> newSource, Class<?> output, Field[] in, Field[] out) {
    this.className = className; this.instance = instance; this.parse = parse; this.newSource = newSource;
    this.output = output; this.in = in; this.out = out;
  }

  /** The class named `name` in the jar, or null. */
  static Class<?> find(ClassLoader loader, String name) throws HostFailure {
    try {
      return Class.forName(name, true, loader);
    } catch (ClassNotFoundException e) {
      return null;
    } catch (LinkageError e) {
      throw new HostFailure("invalid", "class " + name + " could not be loaded: " + e);
    }
  }

  /** The parse(SourceData) method of cls, or null when it has none. */
  static Method parseMethod(Class<?> cls, Class<?> source) {
    for (Method m : cls.getMethods()) {
      if (m.getName().equals("parse") && m.getParameterCount() == 1 && m.getParameterTypes()[0] == source) return m;
    }
    return null;
  }

  /** Checks the whole contract and prepares the reflective accessors. */
  static PluginBeans bind(String className, Class<?> cls, Class<?> source, Class<?> output, Method parse) throws HostFailure {
    if (output == null) throw new HostFailure("invalid", "the jar has " + SOURCE + " but no class " + OUTPUT);
    Class<?> ret = parse.getReturnType();
    if (!(Collection.class.isAssignableFrom(ret) || ret.isAssignableFrom(output) || (ret.isArray() && ret.getComponentType() == output))) {
      throw new HostFailure("invalid", className + ".parse must return List<" + OUTPUT + ">, not " + parse.getGenericReturnType().getTypeName());
    }
    Type generic = parse.getGenericReturnType();
    if (generic instanceof ParameterizedType) {
      Type[] args = ((ParameterizedType) generic).getActualTypeArguments();
      if (args.length == 1 && args[0] instanceof Class && !output.isAssignableFrom((Class<?>) args[0])) {
        throw new HostFailure("invalid", className + ".parse must return List<" + OUTPUT + ">, not " + generic.getTypeName());
      }
    }
    Field[] in = fields(source, true);
    Field[] out = fields(output, false);
    if (out.length == 0) throw new HostFailure("invalid", OUTPUT + " has no fields: they define the transform output");
    for (Field f : in) {
      if (!fillable(f.getType())) {
        throw new HostFailure("invalid", SOURCE + " field " + f.getName() + " has type " + f.getType().getName() + ", which no repo value converts to");
      }
    }
    Constructor<?> newSource;
    try {
      newSource = source.getDeclaredConstructor();
      newSource.setAccessible(true);
    } catch (NoSuchMethodException | RuntimeException e) {
      throw new HostFailure("invalid", SOURCE + " needs a no-argument constructor");
    }
    Object instance = null;
    if (!Modifier.isStatic(parse.getModifiers())) {
      try {
        instance = cls.getConstructor().newInstance();
      } catch (NoSuchMethodException e) {
        throw new HostFailure("invalid", "class " + className + " needs a public no-argument constructor");
      } catch (InvocationTargetException e) {
        throw new HostFailure("invalid", "constructor of " + className + " failed: " + e.getCause());
      } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
        throw new HostFailure("invalid", "class " + className + " could not be instantiated: " + e);
      }
    }
    return new PluginBeans(className, instance, parse, newSource, output, in, out);
  }

  /** Instance fields of a bean, superclass fields first, each made accessible. */
  private static Field[] fields(Class<?> bean, boolean writable) throws HostFailure {
    List<Class<?>> chain = new ArrayList<>();
    for (Class<?> c = bean; c != null && c != Object.class; c = c.getSuperclass()) chain.add(0, c);
    List<Field> list = new ArrayList<>();
    for (Class<?> c : chain) {
      for (Field f : c.getDeclaredFields()) {
        int mod = f.getModifiers();
        if (Modifier.isStatic(mod) || f.isSynthetic() || (writable && Modifier.isFinal(mod))) continue;
        try {
          f.setAccessible(true);
        } catch (RuntimeException e) {
          throw new HostFailure("invalid", "field " + f.getName() + " of " + bean.getName() + " is not accessible: " + e);
        }
        list.add(f);
      }
    }
    return list.toArray(new Field[0]);
  }

  /** Appends ,"input":[...],"output":[...] (name, Java type, derived repo type) for verify replies. */
  void describe(StringBuilder reply) {
    reply.append(",\"input\":");
    list(reply, in, false);
    reply.append(",\"output\":");
    list(reply, out, true);
  }

  private static void list(StringBuilder b, Field[] fields, boolean typed) {
    b.append('[');
    for (int i = 0; i < fields.length; i++) {
      if (i > 0) b.append(',');
      b.append("{\"name\":");
      PluginJson.write(b, fields[i].getName());
      b.append(",\"java\":");
      PluginJson.write(b, fields[i].getType().getName());
      if (typed) {
        b.append(",\"type\":");
        PluginJson.write(b, outputType(fields[i].getType()));
      }
      b.append('}');
    }
    b.append(']');
  }

  /** Plugin output types are string, long and float; time is a long (epoch milliseconds). */
  static String outputType(Class<?> t) {
    if (t == long.class || t == Long.class || t == int.class || t == Integer.class || t == short.class || t == Short.class
        || t == byte.class || t == Byte.class || t == BigInteger.class || Date.class.isAssignableFrom(t) || t == Instant.class) return "long";
    if (t == double.class || t == Double.class || t == float.class || t == Float.class || t == BigDecimal.class) return "float";
    return "string";
  }

  /** Runs parse over each point; returns the output beans as maps of their fields. */
  List<Object> run(List<?> points) throws HostFailure {
    List<Object> result = new ArrayList<>();
    for (int i = 0; i < points.size(); i++) {
      Object point = points.get(i);
      if (!(point instanceof Map)) continue;
      Object bean = fill((Map<?, ?>) point, i);
      Object r;
      try {
        r = parse.invoke(instance, bean);
      } catch (InvocationTargetException e) {
        Throwable c = e.getCause();
        throw new HostFailure("run", c == null ? "parse failed" : c.getClass().getName() + (c.getMessage() == null ? "" : ": " + c.getMessage()));
      } catch (IllegalAccessException | IllegalArgumentException e) {
        throw new HostFailure("run", "cannot call " + className + ".parse: " + e);
      }
      if (r == null) continue;
      if (r instanceof Collection) {
        for (Object o : (Collection<?>) r) add(o, result);
      } else if (r.getClass().isArray()) {
        for (int k = 0; k < Array.getLength(r); k++) add(Array.get(r, k), result);
      } else {
        add(r, result);
      }
    }
    return result;
  }

  private void add(Object o, List<Object> result) throws HostFailure {
    if (o == null) return;
    if (!output.isInstance(o)) throw new HostFailure("run", className + ".parse returned a " + o.getClass().getName() + " in its list; expected " + OUTPUT);
    Map<String, Object> row = new LinkedHashMap<>();
    for (Field f : out) {
      Object v;
      try {
        v = f.get(o);
      } catch (IllegalAccessException e) {
        throw new HostFailure("run", "cannot read " + OUTPUT + "." + f.getName() + ": " + e);
      }
      if (v == null) continue;
      if (v instanceof Date) v = ((Date) v).getTime();
      else if (v instanceof Instant) v = ((Instant) v).toEpochMilli();
      else if (v instanceof Character) v = v.toString();
      else if (v instanceof BigDecimal) v = ((BigDecimal) v).doubleValue();
      row.put(f.getName(), v);
    }
    result.add(row);
  }

  private Object fill(Map<?, ?> point, int index) throws HostFailure {
    Object bean;
    try {
      bean = newSource.newInstance();
    } catch (InvocationTargetException e) {
      throw new HostFailure("run", "constructor of " + SOURCE + " failed: " + e.getCause());
    } catch (ReflectiveOperationException e) {
      throw new HostFailure("run", "cannot create " + SOURCE + ": " + e);
    }
    for (Field f : in) {
      Object v = point.get(f.getName());
      if (v == null) continue;
      Object converted = convert(v, f.getType());
      if (converted == null) {
        throw new HostFailure("run", "point #" + index + ": field " + f.getName() + " value " + preview(v) + " does not fit " + SOURCE + "." + f.getName() + " (" + f.getType().getName() + ")");
      }
      try {
        f.set(bean, converted);
      } catch (IllegalAccessException | IllegalArgumentException e) {
        throw new HostFailure("run", "cannot set " + SOURCE + "." + f.getName() + ": " + e);
      }
    }
    return bean;
  }

  private static boolean fillable(Class<?> t) {
    return t == String.class || t == Object.class || t == long.class || t == Long.class || t == int.class || t == Integer.class
        || t == short.class || t == Short.class || t == byte.class || t == Byte.class || t == double.class || t == Double.class
        || t == float.class || t == Float.class || t == boolean.class || t == Boolean.class || t == BigInteger.class
        || t == BigDecimal.class || t == java.sql.Timestamp.class || t == Date.class || t == Instant.class
        || t.isAssignableFrom(ArrayList.class) || t.isAssignableFrom(LinkedHashMap.class);
  }

  /** Converts a JSON value to a field type; null when it does not fit. */
  static Object convert(Object v, Class<?> t) {
    // Fast paths for the common cases: a long into a long, a double into a double.
    if (v instanceof Long) {
      if (t == long.class || t == Long.class) return v;
      if (t == double.class || t == Double.class) return ((Long) v).doubleValue();
    } else if (v instanceof Double && (t == double.class || t == Double.class)) {
      return v;
    }
    if (t == Object.class || t.isInstance(v) && !(v instanceof Number)) return v;
    if (t == String.class) {
      if (v instanceof Map || v instanceof List) {
        StringBuilder b = new StringBuilder();
        PluginJson.write(b, v);
        return b.toString();
      }
      return String.valueOf(v);
    }
    if (v instanceof Number || v instanceof String && !(t == java.sql.Timestamp.class || t == Date.class || t == Instant.class)) {
      BigDecimal n;
      try {
        n = v instanceof Number ? new BigDecimal(v.toString()) : new BigDecimal(((String) v).trim());
      } catch (NumberFormatException e) {
        return null;
      }
      try {
        if (t == long.class || t == Long.class) return n.longValueExact();
        if (t == int.class || t == Integer.class) return n.intValueExact();
        if (t == short.class || t == Short.class) return n.shortValueExact();
        if (t == byte.class || t == Byte.class) return n.byteValueExact();
        if (t == BigInteger.class) return n.toBigIntegerExact();
      } catch (ArithmeticException e) {
        return null;
      }
      if (t == double.class || t == Double.class) return n.doubleValue();
      if (t == float.class || t == Float.class) return n.floatValue();
      if (t == BigDecimal.class) return n;
      if (v instanceof Number && (t == java.sql.Timestamp.class || t == Date.class || t == Instant.class)) return time(Instant.ofEpochMilli(n.longValue()), t);
      return null;
    }
    if (v instanceof String && (t == java.sql.Timestamp.class || t == Date.class || t == Instant.class)) {
      Instant at = parseTime((String) v);
      return at == null ? null : time(at, t);
    }
    if (v instanceof Boolean && (t == boolean.class || t == Boolean.class)) return v;
    return null;
  }

  private static Object time(Instant at, Class<?> t) {
    if (t == Instant.class) return at;
    return t == Date.class ? Date.from(at) : java.sql.Timestamp.from(at);
  }

  /** RFC 3339 (with offset or Z); a date-time without offset is read as UTC. */
  private static Instant parseTime(String s) {
    Instant fast = fastTime(s);
    if (fast != null) return fast;
    String text = s.trim().replace(' ', 'T');
    try {
      return OffsetDateTime.parse(text).toInstant();
    } catch (RuntimeException e) {
      try {
        return LocalDateTime.parse(text).toInstant(ZoneOffset.UTC);
      } catch (RuntimeException e2) {
        return null;
      }
    }
  }

  /**
   * yyyy-MM-ddTHH:mm:ss[.f{1,9}](Z|+hh:mm|-hh:mm), the form pushed dates take,
   * without DateTimeFormatter (several times slower, and this runs per point);
   * null for anything else, which the general parser then handles.
   */
  static Instant fastTime(String s) {
    int n = s.length();
    if (n < 20 || s.charAt(4) != '-' || s.charAt(7) != '-' || (s.charAt(10) != 'T' && s.charAt(10) != 't' && s.charAt(10) != ' ')
        || s.charAt(13) != ':' || s.charAt(16) != ':') return null;
    int year = digits(s, 0, 4), month = digits(s, 5, 2), day = digits(s, 8, 2);
    int hour = digits(s, 11, 2), minute = digits(s, 14, 2), second = digits(s, 17, 2);
    if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return null;
    int i = 19;
    long nanos = 0;
    if (s.charAt(i) == '.') {
      int start = ++i;
      while (i < n && i - start < 9 && Character.isDigit(s.charAt(i))) nanos = nanos * 10 + (s.charAt(i++) - '0');
      if (i == start || (i < n && Character.isDigit(s.charAt(i)))) return null;
      for (int k = i - start; k < 9; k++) nanos *= 10;
    }
    if (i >= n) return null;
    int offset;
    char z = s.charAt(i);
    if ((z == 'Z' || z == 'z') && i + 1 == n) {
      offset = 0;
    } else if ((z == '+' || z == '-') && i + 6 == n && s.charAt(i + 3) == ':') {
      int oh = digits(s, i + 1, 2), om = digits(s, i + 4, 2);
      if (oh < 0 || oh > 18 || om < 0 || om > 59) return null;
      offset = (z == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    } else {
      return null;
    }
    if (day > java.time.YearMonth.of(year, month).lengthOfMonth()) return null;
    long days = java.time.LocalDate.of(year, month, day).toEpochDay();
    return Instant.ofEpochSecond(days * 86400 + hour * 3600 + minute * 60 + second - offset, nanos);
  }

  private static int digits(String s, int from, int count) {
    int v = 0;
    for (int i = from; i < from + count; i++) {
      char c = s.charAt(i);
      if (c < '0' || c > '9') return -1;
      v = v * 10 + (c - '0');
    }
    return v;
  }

  private static String preview(Object v) {
    StringBuilder b = new StringBuilder();
    PluginJson.write(b, v);
    return b.length() > 60 ? b.substring(0, 57) + "..." : b.toString();
  }
}
