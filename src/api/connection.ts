/**
 * Connection-level answers: what the client sees when the HTTP parser itself
 * refuses bytes (malformed request, junk after a request, header overflow,
 * timeout) and when a request body is refused before it was read whole.
 *
 * The rule in both cases: the client gets its answer before the connection
 * closes. Closing a socket whose receive buffer still holds unread bytes makes
 * the kernel send a reset, which can destroy an answer the client has not read
 * yet; so the rest of the request is drained, up to a bound, first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** Most bytes read and discarded after a refused request before the connection is cut. */
export const DRAIN_BYTES = 64 * 1024 * 1024;
/** Longest a refused request's remaining bytes are drained before the connection is cut. */
export const DRAIN_MS = 5000;
/** Longest the answer to bad bytes waits for the answer of the complete request before them. */
const PENDING_MS = 60_000;

/**
 * Reads and discards the rest of a refused request body (the answer was or is
 * being sent), so the connection can stay open; cuts it after DRAIN_BYTES or
 * DRAIN_MS. Returns false when the body was already read whole.
 */
export function drainRequest(raw: IncomingMessage): boolean {
  if (raw.complete || raw.socket?.destroyed !== false) return false;
  const socket = raw.socket;
  let drained = 0;
  const cut = (): void => void socket.destroy();
  const timer = setTimeout(cut, DRAIN_MS);
  timer.unref();
  raw.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_BYTES) cut();
  });
  raw.once('end', () => clearTimeout(timer));
  raw.once('close', () => clearTimeout(timer));
  raw.resume();
  return true;
}

/** Ends a socket after `answer` and discards what the peer still sends, within the drain bounds. */
function endAfter(socket: Socket, answer: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  let drained = 0;
  const timer = setTimeout(() => socket.destroy(), DRAIN_MS);
  timer.unref();
  socket.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_BYTES) socket.destroy();
  });
  socket.once('end', () => socket.destroy());
  socket.once('close', () => clearTimeout(timer));
  socket.end(answer);
  socket.resume();
}

/**
 * Fastify's clientErrorHandler: answers parser-level failures in the
 * documented JSON error shape with an X-Reqid, after the answer of a request
 * still in progress on the same connection (a push followed by junk bytes is
 * stored, so its 200 must reach the client first). Resets and timeouts of
 * clients that went away are logged at debug only.
 */
export function clientErrorHandler(reqId: () => string) {
  // Fastify calls it with `this` bound to the instance.
  return function (this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
    const log = this.log;
    // HPE_INVALID_EOF_STATE: the peer closed its side in the middle of a request.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'HPE_INVALID_EOF_STATE' || socket.destroyed) {
      log.debug({ reason: err.code }, 'client went away');
      socket.destroy();
      return;
    }
    const id = reqId();
    let status = 400;
    let error = `E18007: invalid request entity: malformed HTTP request (${err.code ?? 'parse error'})`;
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      error = 'request timeout: the request was not received in time';
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      error = 'E18007: invalid request entity: request headers too large';
    }
    log.info({ reqId: id, status, reason: err.code }, 'request refused by the HTTP parser');
    const body = JSON.stringify({ error });
    const answer =
      `HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : status === 408 ? 'Request Timeout' : 'Request Header Fields Too Large'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Reqid: ${id}\r\nConnection: close\r\n\r\n${body}`;
    // Node's own default does the same check: the response in progress on this socket.
    const pending = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    // Wait only for a request that was read whole (it may be stored); one cut short by the bad bytes never completes.
    if (!pending || pending.writableFinished || !pending.req?.complete) return endAfter(socket, answer);
    let done = false;
    const once = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // The pending response may have closed the socket itself (Connection: close).
      if (socket.destroyed || !socket.writable) return void socket.destroy();
      endAfter(socket, answer);
    };
    const timer = setTimeout(once, PENDING_MS);
    timer.unref();
    pending.once('finish', () => setImmediate(once));
    pending.once('close', () => setImmediate(once));
  };
}
