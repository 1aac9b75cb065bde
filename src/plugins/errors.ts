/**
 * Internal plugin failures. Callers (the transform runner, the plugin API)
 * branch on the class, never on message text: an invalid plugin is the
 * uploader's fault and never succeeds on retry; a run error may be data
 * dependent; timeouts and memory kills are resource limits.
 */

/** The plugin package cannot be used at all (syntax error, no usable export, missing class). */
export class PluginInvalidError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PluginInvalidError';
  }
}

/** The plugin threw, returned something that is not points, or an output field failed its declared type. */
export class PluginRunError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PluginRunError';
  }
}

/** The plugin ran longer than the runtime's `timeoutMs`; its worker or JVM was killed and replaced. */
export class PluginTimeoutError extends PluginRunError {
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number) {
    super(message);
    this.name = 'PluginTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** The plugin exceeded the runtime's `memoryMb`; its worker or JVM was killed and replaced. */
export class PluginMemoryError extends PluginRunError {
  readonly memoryMb: number;
  constructor(message: string, memoryMb: number) {
    super(message);
    this.name = 'PluginMemoryError';
    this.memoryMb = memoryMb;
  }
}

/** The runtime for this kind of plugin is not installed on this server (no JDK). */
export class PluginUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginUnavailableError';
  }
}
