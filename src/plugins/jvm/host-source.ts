/**
 * The Java plugin host sources, read from the .java files beside this module
 * (the build copies them to dist/plugins/jvm/). Compiled with javac on first use.
 */
import { readFileSync } from 'node:fs';

const FILES = ['PluginHost.java', 'PluginJson.java', 'PluginBeans.java'] as const;

export const HOST_SOURCES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(FILES.map((name) => [name, readFileSync(new URL(`./${name}`, import.meta.url), 'utf8')])),
);

/** The class whose main() runs the host. */
export const HOST_MAIN_CLASS = 'PluginHost';
