import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs the parser classes of one plugin jar for the pipeline server
 * (src/plugins/jvm-runtime.ts). Protocol: one JSON object per line on stdin,
 * one reply per line on stdout. The first line written is {"ready":true}.
 *   {"id":1,"op":"verify","class":"com.x.Parser"}
 *   {"id":2,"op":"run","class":"com.x.Parser","points":[{...},...]}
 * Replies: {"id":N,"ok":true,"form":"map"|"batch"|"bean","points":[...]} or
 * (verify of a "bean" plugin adds "input" and "output": [{"name","java","type"}])
 *          {"id":N,"ok":false,"kind":"invalid"|"run","error":"..."}.
 * The server enforces time and memory limits by killing this process.
 */
public final class PluginHost {
  private static final class Target {
    final Object instance;
    final Method map;
    final Method batch;
    /** Set for plugins written to the official contract (userWrite.bean.SourceData / OutputData). */
    final PluginBeans beans;
    Target(Object instance, Method map, Method batch, PluginBeans beans) {
      this.instance = instance; this.map = map; this.batch = batch; this.beans = beans;
    }
    String form() { return beans != null ? "bean" : batch != null ? "batch" : "map"; }
  }

  private static final Map<String, Target> targets = new HashMap<>();
  private static ClassLoader loader;

  public static void main(String[] args) throws Exception {
    // Plugin output on System.out would corrupt the protocol: keep the real stdout for replies only.
    Writer out = new BufferedWriter(new OutputStreamWriter(new FileOutputStream(FileDescriptor.out), StandardCharsets.UTF_8), 1 << 16);
    System.setOut(System.err);
    loader = new URLClassLoader(new URL[] { new File(args[0]).toURI().toURL() }, ClassLoader.getPlatformClassLoader());
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 16);
    out.write("{\"ready\":true}\n");
    out.flush();
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isEmpty()) continue;
      StringBuilder reply = new StringBuilder(256);
      Object id = null;
      try {
        Map<?, ?> req = (Map<?, ?>) new PluginJson(line).parse();
        id = req.get("id");
        reply.append("{\"id\":");
        PluginJson.write(reply, id);
        handle(req, reply);
      } catch (HostFailure f) {
        fail(reply, id, f.kind, f.getMessage());
      } catch (RuntimeException e) {
        fail(reply, id, "run", "plugin host error: " + describe(e));
      }
      reply.append('\n');
      out.write(reply.toString());
      out.flush();
    }
  }

  private static void fail(StringBuilder reply, Object id, String kind, String message) {
    reply.setLength(0);
    reply.append("{\"id\":");
    PluginJson.write(reply, id);
    reply.append(",\"ok\":false,\"kind\":");
    PluginJson.write(reply, kind);
    reply.append(",\"error\":");
    PluginJson.write(reply, message);
    reply.append('}');
  }

  private static void handle(Map<?, ?> req, StringBuilder reply) throws HostFailure {
    String className = String.valueOf(req.get("class"));
    Target target = target(className);
    reply.append(",\"ok\":true,\"form\":\"").append(target.form()).append('"');
    if (!"run".equals(req.get("op"))) {
      if (target.beans != null) target.beans.describe(reply);
      reply.append('}');
      return;
    }
    Object points = req.get("points");
    List<Object> output = invoke(target, className, points instanceof List ? (List<?>) points : new ArrayList<>());
    reply.append(",\"points\":");
    try {
      PluginJson.write(reply, output);
    } catch (RuntimeException | StackOverflowError e) {
      throw new HostFailure("run", className + " returned a value that cannot be serialised: " + describe(e));
    }
    reply.append('}');
  }

  private static Target target(String className) throws HostFailure {
    Target cached = targets.get(className);
    if (cached != null) return cached;
    Class<?> cls;
    try {
      cls = Class.forName(className, true, loader);
    } catch (ClassNotFoundException e) {
      throw new HostFailure("invalid", "class " + className + " was not found in the jar");
    } catch (LinkageError e) {
      throw new HostFailure("invalid", "class " + className + " could not be loaded: " + describe(e));
    }
    if (!Modifier.isPublic(cls.getModifiers()) || Modifier.isAbstract(cls.getModifiers())) {
      throw new HostFailure("invalid", "class " + className + " must be public and not abstract");
    }
    Class<?> source = PluginBeans.find(loader, PluginBeans.SOURCE);
    Method beanParse = source == null ? null : PluginBeans.parseMethod(cls, source);
    if (beanParse != null) {
      Target target = new Target(null, null, null, PluginBeans.bind(className, cls, source, PluginBeans.find(loader, PluginBeans.OUTPUT), beanParse));
      targets.put(className, target);
      return target;
    }
    Method map = null, batch = null;
    for (Method m : cls.getMethods()) {
      if (Modifier.isStatic(m.getModifiers()) || m.getParameterCount() != 1) continue;
      Class<?> param = m.getParameterTypes()[0];
      if (m.getName().equals("parseBatch") && param.isAssignableFrom(ArrayList.class)) batch = m;
      if (m.getName().equals("parse") && param.isAssignableFrom(LinkedHashMap.class)) map = m;
    }
    if (map == null && batch == null && source != null) {
      throw new HostFailure("invalid", "class " + className + " needs a public method parse(" + PluginBeans.SOURCE + ") returning List<" + PluginBeans.OUTPUT + ">");
    }
    if (map == null && batch == null) {
      throw new HostFailure("invalid", "class " + className
          + " needs a public method parse(java.util.Map<String,Object>) or parseBatch(java.util.List<java.util.Map<String,Object>>)");
    }
    Object instance;
    try {
      Constructor<?> ctor = cls.getConstructor();
      instance = ctor.newInstance();
    } catch (NoSuchMethodException e) {
      throw new HostFailure("invalid", "class " + className + " needs a public no-argument constructor");
    } catch (InvocationTargetException e) {
      throw new HostFailure("invalid", "constructor of " + className + " failed: " + describe(e.getCause()));
    } catch (ReflectiveOperationException | LinkageError e) {
      throw new HostFailure("invalid", "class " + className + " could not be instantiated: " + describe(e));
    }
    Target target = new Target(instance, map, batch, null);
    targets.put(className, target);
    return target;
  }

  private static List<Object> invoke(Target t, String className, List<?> points) throws HostFailure {
    if (t.beans != null) return t.beans.run(points);
    List<Object> output = new ArrayList<>();
    try {
      if (t.batch != null) {
        Object r = t.batch.invoke(t.instance, new ArrayList<Object>(points));
        if (r != null) collect(r, output, className + ".parseBatch");
      } else {
        for (Object point : points) {
          Object r = t.map.invoke(t.instance, point);
          if (r != null) collect(r, output, className + ".parse");
        }
      }
    } catch (InvocationTargetException e) {
      throw new HostFailure("run", describe(e.getCause()));
    } catch (IllegalAccessException | IllegalArgumentException e) {
      throw new HostFailure("run", "cannot call " + className + ": " + describe(e));
    }
    return output;
  }

  /** Accepts a Map (one point), a Collection or array of Maps; anything else is a contract violation. */
  private static void collect(Object r, List<Object> output, String where) throws HostFailure {
    if (r instanceof Map) {
      output.add(r);
    } else if (r instanceof Collection) {
      output.addAll((Collection<?>) r);
    } else if (r.getClass().isArray() && !r.getClass().getComponentType().isPrimitive()) {
      for (int i = 0; i < Array.getLength(r); i++) output.add(Array.get(r, i));
    } else {
      throw new HostFailure("run", where + " returned " + r.getClass().getName() + "; expected a Map, a List of Maps or null");
    }
  }

  private static String describe(Throwable e) {
    if (e == null) return "unknown error";
    String message = e.getMessage();
    return message == null ? e.getClass().getName() : e.getClass().getName() + ": " + message;
  }
}
