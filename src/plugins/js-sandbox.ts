/**
 * Compiles and drives one JavaScript plugin inside a `node:vm` context.
 * Runs in a worker thread (see js-worker.ts); the worker is the resource
 * boundary (heap limit, kill on timeout), this context is the capability
 * boundary: no require, process, Buffer, fetch, timers, imports or string
 * code generation.
 *
 * The rule that keeps host objects out of reach: plugin code only ever sees
 * objects created inside its own context. Points go in as a JSON string and
 * are parsed by the context's own JSON.parse; results come back as a string
 * produced by the context's own JSON.stringify; errors are turned into
 * strings by context code. Host code never calls a plugin function nor
 * converts a plugin value itself (a Proxy's traps would receive host-realm
 * argument arrays, whose constructor is the host's unrestricted Function).
 */
import vm from 'node:vm';

/** `map`: default export called per point; `batch`: `batch(points)` called once per chunk. */
export type PluginForm = 'map' | 'batch';

/** A compiled plugin, cached per worker. */
export interface SandboxedPlugin {
  readonly form: PluginForm;
  /** Runs over a JSON array of points; resolves to the output JSON array text. */
  /** `maxOut`: most output points; more make the run fail before its output is serialised. */
  run(inputJson: string, big: boolean, maxOut?: number): Promise<string>;
}

/** Thrown for problems with the module itself (syntax, imports, exports, top-level failure). */
export class SandboxInvalidError extends Error {}
/** Thrown when the plugin failed while processing points. */
export class SandboxRunError extends Error {}

interface ContextHelpers {
  importRejection(specifier: unknown): Error;
  describe(err: unknown): string;
  formOf(ns: object): string;
  drive(ns: object, input: string, big: boolean, maxOut: number): Promise<string>;
  then: (this: Promise<string>, ok: (v: unknown) => void, fail: (e: unknown) => void) => void;
}

// Evaluated once per context before any plugin code, so the functions it
// returns hold the original builtins even if the plugin later replaces them.
// Promise is frozen because host code settles on promises from this realm.
const PRELUDE = String.raw`(function () {
'use strict';
const parse = JSON.parse, stringify = JSON.stringify, isArray = Array.isArray;
const toBig = BigInt, toStr = String, then = Promise.prototype.then;
const MARK = '\u0000n:';
Object.freeze(Promise.prototype);
Object.freeze(Promise);
Object.defineProperty(Error, 'prepareStackTrace', { value: undefined, writable: false, configurable: false });
// Buffer memory lives outside the V8 heap, where the heap limit does not reach.
for (const name of ['ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Atomics', 'WebAssembly', 'Int8Array', 'Uint8Array',
  'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float16Array', 'Float32Array',
  'Float64Array', 'BigInt64Array', 'BigUint64Array']) delete globalThis[name];
const revive = (k, v) => (typeof v === 'string' && v.startsWith(MARK) ? toBig(v.slice(MARK.length)) : v);
const bigToText = (k, v) => (typeof v === 'bigint' ? MARK + v.toString() : v);
const isThenable = (r) => r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function';
function describe(e) {
  try {
    if (e !== null && (typeof e === 'object' || typeof e === 'function')) {
      const name = e.name, message = e.message;
      if (typeof message === 'string') return (typeof name === 'string' && name ? name + ': ' : '') + message;
    }
    return toStr(e);
  } catch (_) {
    return 'an unprintable value was thrown';
  }
}
function typeName(v) { return v === null ? 'null' : isArray(v) ? 'array' : typeof v; }
function formOf(ns) {
  if (typeof ns.batch === 'function') return 'batch';
  if (typeof ns.default === 'function') return 'map';
  return 'none';
}
async function drive(ns, input, big, maxOut) {
  try {
    const points = big ? parse(input, revive) : parse(input);
    let out;
    if (typeof ns.batch === 'function') {
      let r = ns.batch(points);
      if (isThenable(r)) r = await r;
      if (!isArray(r)) return 'Ebatch() must return an array of points, got ' + typeName(r);
      out = r;
    } else {
      const fn = ns.default;
      out = [];
      let n = 0;
      for (let i = 0; i < points.length; i++) {
        let r = fn(points[i]);
        if (isThenable(r)) r = await r;
        if (r === null || r === undefined) continue;
        if (isArray(r)) { for (let j = 0; j < r.length; j++) out[n++] = r[j]; }
        else out[n++] = r;
      }
    }
    if (out.length > maxOut) return 'Eoutput limit: the plugin returned ' + out.length + ' points, over the limit of ' + maxOut + ' points per run';
    let text;
    try { text = stringify(out); } catch (_) { text = stringify(out, bigToText); }
    return typeof text === 'string' ? text : 'Eoutput is not serialisable';
  } catch (e) {
    return 'E' + describe(e);
  }
}
function importRejection(specifier) {
  return new Error('plugins cannot import modules (tried to import ' + toStr(specifier) + ')');
}
return { importRejection, describe, formOf, drive, then };
})()`;

/**
 * Compiles an ES module plugin in a fresh context and evaluates it.
 * @throws SandboxInvalidError for syntax errors, imports, failing top-level code or no usable export.
 */
export async function compilePlugin(code: string, identifier: string): Promise<SandboxedPlugin> {
  const context = vm.createContext(Object.create(null) as object, {
    name: identifier,
    codeGeneration: { strings: false, wasm: false },
  });
  // A null-prototype sandbox matters: with `{}` the context's globalThis.constructor
  // would resolve to the host's Object, the classic vm escape.
  const helpers = new vm.Script(PRELUDE, { filename: 'plugin-prelude.js' }).runInContext(context) as ContextHelpers;

  let mod: vm.SourceTextModule;
  try {
    mod = new vm.SourceTextModule(code, {
      context,
      identifier,
      // Without this callback Node rejects import() with a host-realm error object,
      // from which plugin code could reach the host's Function; build the error in-context.
      importModuleDynamically: (specifier: string) => {
        throw helpers.importRejection(specifier);
      },
    });
  } catch (err) {
    // Compile errors come from V8, not from plugin code, so reading them is safe.
    throw new SandboxInvalidError(`syntax error: ${(err as Error).message}`);
  }
  if (mod.dependencySpecifiers.length > 0) {
    throw new SandboxInvalidError(`plugins cannot import modules (imports ${mod.dependencySpecifiers.map((s) => `'${s}'`).join(', ')})`);
  }
  await mod.link(() => {
    throw new SandboxInvalidError('plugins cannot import modules');
  });
  try {
    await mod.evaluate();
  } catch (err) {
    throw new SandboxInvalidError(`module evaluation failed: ${helpers.describe(err)}`);
  }
  const ns = mod.namespace;
  const form = helpers.formOf(ns);
  if (form !== 'map' && form !== 'batch') {
    throw new SandboxInvalidError('the module must export a default function (point => points) or a function named batch (points => points)');
  }
  return {
    form,
    run(inputJson: string, big: boolean, maxOut = Number.MAX_SAFE_INTEGER): Promise<string> {
      const pending = helpers.drive(ns, inputJson, big, maxOut);
      return new Promise<string>((resolve, reject) => {
        helpers.then.call(
          pending,
          (text) => {
            // Output is a JSON array, so it starts with '['; errors start with 'E' (no copy of big results).
            if (typeof text !== 'string') reject(new SandboxRunError('plugin driver returned no result'));
            else if (text.startsWith('[')) resolve(text);
            else reject(new SandboxRunError(text.slice(1)));
          },
          () => reject(new SandboxRunError('plugin failed')),
        );
      });
    },
  };
}
