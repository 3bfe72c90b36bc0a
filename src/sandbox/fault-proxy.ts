/**
 * A TCP proxy on loopback that puts faults between a client and a real server, for tests of what
 * a router does when its endpoint misbehaves.
 *
 * Connection faults: `pass` forwards both ways; `hang` accepts and reads but never forwards or
 * answers; `reset` drops each new connection at once; `lose-answer` forwards the request, so the
 * server does the work, then drops the connection instead of the answer. The mode is read at
 * every chunk a client sends, so connections kept alive from before a fault meet it too.
 *
 * HTTP faults: `throttle` and `error-5xx` answer each HTTP/1.1 request themselves, without
 * forwarding it: a throttling error (400 `Throttling` in AWS's Query protocol) or a 503
 * (`ServiceUnavailable`). The proxy reads requests one at a time (the head up to its blank line,
 * then a Content-Length body), so a kept-alive connection gets exactly one answer per request and
 * stays usable. `failNext(mode, n, match?)` gives the next `n` requests (those `match` accepts)
 * the fault and lets the ones after them through.
 *
 * Limits, which the AWS SDK and fetch never reach here: requests must not be pipelined (a
 * fault's answer could overtake a forwarded request's); a request the proxy cannot read whole
 * meets an HTTP fault with the connection closed after the answer — a chunked upload is refused
 * with 411, an `Expect: 100-continue` or a body over 1 MiB gets the fault's answer. A connection
 * that forwarded a chunked upload is passed through unread from then on, and is closed when an
 * HTTP fault is due.
 */
import { randomUUID } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

/** Faults answered at the HTTP level, per request, without forwarding. */
export type HttpFaultMode = 'throttle' | 'error-5xx';

/** What the proxy does with traffic. */
export type FaultMode = 'pass' | 'hang' | 'reset' | 'lose-answer' | HttpFaultMode;

/**
 * The body of the HTTP faults' answers: `aws-query`, an AWS Query-protocol `<ErrorResponse>`
 * (text/xml; throttling is 400 `Throttling`, the 5xx is 503 `ServiceUnavailable`), as ELBv2
 * answers; `plain`, a line of text/plain (throttling is then 429).
 */
export type ErrorFormat = 'aws-query' | 'plain';

/** One request as the proxy read it, for `failNext`'s `match`. */
export interface ProxiedRequest {
  method: string;
  /** The request target, e.g. `/` or `/cutover/routes`. */
  path: string;
  /** Lower-cased names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The body as UTF-8, when the proxy read it whole (always, below 1 MiB with a Content-Length). */
  body?: string;
}

/** Options of `startFaultProxy`. */
export interface FaultProxyOptions {
  /** Default `aws-query`. */
  errorFormat?: ErrorFormat;
}

/** A running proxy. */
export interface FaultProxy {
  /** `127.0.0.1:PORT`, to give the client instead of the server's address. */
  readonly address: string;
  /** The fault for all traffic from now on; setting it also drops what `failNext` still owed. */
  mode: FaultMode;
  /** Connections accepted so far. */
  readonly connections: number;
  /** HTTP requests read from clients so far, forwarded or answered by the proxy. */
  readonly requests: number;
  /** Requests the proxy answered itself with an HTTP fault. */
  readonly faulted: number;
  /** Requests `failNext` still owes its fault to. */
  readonly pending: number;
  /**
   * Answer the next `n` requests (default 1; Infinity for all) with `mode`'s fault, only those
   * `match` accepts when it is given; the others, and the requests after the `n`, meet `mode` as
   * set (normally `pass`). A new call replaces what an earlier one still owed.
   */
  failNext(mode: HttpFaultMode, n?: number, match?: (request: ProxiedRequest) => boolean): void;
  stop(): Promise<void>;
}

/** Longest request head the proxy reads. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Longest body the proxy holds to read a request whole. */
const MAX_BODY_BYTES = 1024 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

/** `Action` of an AWS Query-protocol request (`Action=ModifyListener&…` in a form body). */
export function queryAction(request: ProxiedRequest): string | undefined {
  return request.body === undefined ? undefined : (new URLSearchParams(request.body).get('Action') ?? undefined);
}

/** Start a proxy to `target` (`host:port`) on a free loopback port. */
export async function startFaultProxy(target: string, mode: FaultMode = 'pass', options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const format = options.errorFormat ?? 'aws-query';
  const open = new Set<Socket>();
  const counts = { connections: 0, requests: 0, faulted: 0 };
  const state: { mode: FaultMode; next?: { mode: HttpFaultMode; left: number; match?: (r: ProxiedRequest) => boolean } } = { mode };

  /** The HTTP fault `request` meets, taking one from `failNext` when it is owed one. */
  const faultFor = (request: ProxiedRequest): HttpFaultMode | undefined => {
    const next = state.next;
    if (next && next.left > 0 && (!next.match || next.match(request))) {
      next.left -= 1;
      return next.mode;
    }
    return isHttpFault(state.mode) ? state.mode : undefined;
  };
  const faultDue = () => isHttpFault(state.mode) || (state.next?.left ?? 0) > 0;

  const server = createServer((client) => {
    counts.connections += 1;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    let upstream: Socket | undefined;
    let loseAnswer = false;
    const reader = new RequestReader();
    const drop = () => {
      client.destroy();
      upstream?.destroy();
    };
    const forward = (bytes: Buffer) => {
      if (state.mode === 'hang') return;
      loseAnswer = state.mode === 'lose-answer';
      if (!upstream) {
        const u = connect(port, host);
        upstream = u;
        open.add(u);
        u.on('close', () => {
          open.delete(u);
          client.destroy();
        });
        u.on('error', () => client.destroy());
        u.on('data', (answer) => {
          // The server answered, so it did the work; with a lost answer the client never hears.
          if (loseAnswer) {
            client.resetAndDestroy();
            u.destroy();
            return;
          }
          client.write(answer);
        });
      }
      upstream.write(bytes);
    };
    // The mode is read at every chunk, so a keep-alive connection opened before a fault meets it too.
    client.on('data', (chunk) => {
      if (state.mode === 'reset') {
        client.resetAndDestroy();
        upstream?.destroy();
        return;
      }
      for (const item of reader.push(chunk)) {
        if (item.kind === 'bad') return drop();
        if (item.kind === 'unread') {
          // A chunked upload went through before: requests cannot be told apart, so a due fault
          // closes the connection and the client's next request comes on a new one.
          if (faultDue()) return drop();
          forward(item.bytes);
          continue;
        }
        if (item.kind === 'body') {
          forward(item.bytes);
          continue;
        }
        counts.requests += 1;
        const fault = faultFor(item.request);
        if (!fault) {
          forward(item.bytes);
          continue;
        }
        counts.faulted += 1;
        // The rest of a request not read whole cannot be told from the next request: close after.
        const close = !item.whole || !item.keepAlive;
        client.write(item.chunked ? refuseChunked() : faultAnswer(fault, format, close));
        if (close) {
          reader.stop();
          client.end();
          upstream?.end();
          return;
        }
      }
    });
    client.on('end', () => upstream?.end());
    client.on('close', () => upstream?.destroy());
    if (state.mode === 'reset') client.resetAndDestroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port: own } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${own}`,
    get mode() {
      return state.mode;
    },
    set mode(m: FaultMode) {
      state.mode = m;
      delete state.next;
    },
    get connections() {
      return counts.connections;
    },
    get requests() {
      return counts.requests;
    },
    get faulted() {
      return counts.faulted;
    },
    get pending() {
      return state.next?.left ?? 0;
    },
    failNext(m: HttpFaultMode, n = 1, match?: (request: ProxiedRequest) => boolean) {
      if (!isHttpFault(m)) throw new TypeError(`failNext takes an HTTP fault (throttle, error-5xx), not ${String(m)}`);
      if (!(Number.isInteger(n) || n === Infinity) || n < 0) throw new TypeError(`failNext needs a count of requests (or Infinity), not ${n}`);
      state.next = { mode: m, left: n, ...(match ? { match } : {}) };
    },
    async stop() {
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function isHttpFault(mode: FaultMode): mode is HttpFaultMode {
  return mode === 'throttle' || mode === 'error-5xx';
}

/** What the reader makes of the bytes a client sent. */
type ReadItem =
  /** A request's head, with its body when `whole`; the bytes are exactly what the client sent. */
  | { kind: 'request'; request: ProxiedRequest; bytes: Buffer; whole: boolean; keepAlive: boolean; chunked: boolean }
  /** More body of the last request, which was not read whole. */
  | { kind: 'body'; bytes: Buffer }
  /** Bytes after a chunked upload: the requests are no longer told apart. */
  | { kind: 'unread'; bytes: Buffer }
  /** Not HTTP/1.x, or a head too long. */
  | { kind: 'bad' };

/**
 * Splits a client's bytes into requests: the head up to its blank line, then Content-Length
 * bytes of body. A request is held until it is whole (so a fault can be chosen by its body),
 * except a chunked one, one expecting `100 Continue` and one whose body is over 1 MiB, which are
 * given on at their head and their body streamed after.
 */
class RequestReader {
  private buffer: Buffer = Buffer.alloc(0);
  /** Body bytes still to stream of a request not read whole; Infinity after a chunked one. */
  private streaming = 0;
  private stopped = false;

  /** Stop reading: what comes after is ignored. */
  stop(): void {
    this.stopped = true;
  }

  push(chunk: Buffer): ReadItem[] {
    if (this.stopped) return [];
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const items: ReadItem[] = [];
    for (;;) {
      if (this.streaming > 0) {
        if (!this.buffer.length) break;
        const take = Math.min(this.streaming, this.buffer.length);
        items.push({ kind: this.streaming === Infinity ? 'unread' : 'body', bytes: this.buffer.subarray(0, take) });
        this.buffer = this.buffer.subarray(take);
        this.streaming -= take;
        continue;
      }
      // Empty lines before a request line are allowed (RFC 9112 §2.2) and carry nothing.
      let start = 0;
      while (start < this.buffer.length && (this.buffer[start] === 0x0d || this.buffer[start] === 0x0a)) start += 1;
      this.buffer = this.buffer.subarray(start);
      if (!this.buffer.length) break;
      const end = this.buffer.indexOf(HEAD_END);
      if (end < 0) {
        if (this.buffer.length > MAX_HEAD_BYTES) return this.bad(items);
        break;
      }
      const head = parseHead(this.buffer.subarray(0, end).toString('latin1'));
      if (!head) return this.bad(items);
      const headBytes = end + HEAD_END.length;
      const chunked = head.headers['transfer-encoding'] !== undefined;
      const expects = /100-continue/i.test(head.headers.expect ?? '');
      if (chunked || (expects && head.contentLength > 0) || head.contentLength > MAX_BODY_BYTES) {
        items.push({ kind: 'request', request: head.request, bytes: this.buffer.subarray(0, headBytes), whole: false, keepAlive: head.keepAlive, chunked });
        this.buffer = this.buffer.subarray(headBytes);
        this.streaming = chunked ? Infinity : head.contentLength;
        continue;
      }
      const total = headBytes + head.contentLength;
      if (this.buffer.length < total) break;
      const bytes = this.buffer.subarray(0, total);
      items.push({
        kind: 'request',
        request: { ...head.request, body: bytes.subarray(headBytes).toString('utf8') },
        bytes,
        whole: true,
        keepAlive: head.keepAlive,
        chunked: false,
      });
      this.buffer = this.buffer.subarray(total);
    }
    return items;
  }

  private bad(items: ReadItem[]): ReadItem[] {
    this.stopped = true;
    items.push({ kind: 'bad' });
    return items;
  }
}

/** The request line and headers, or undefined when they are not HTTP/1.x. */
function parseHead(text: string): { request: ProxiedRequest; contentLength: number; keepAlive: boolean; headers: Record<string, string> } | undefined {
  const [line = '', ...lines] = text.split('\r\n');
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.([01])$/.exec(line);
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const colon = l.indexOf(':');
    if (colon <= 0) return undefined;
    const name = l.slice(0, colon).trim().toLowerCase();
    const value = l.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let contentLength = 0;
  if (headers['content-length'] !== undefined) {
    // Repeated equal values are allowed; differing ones make the request unreadable.
    const values = new Set(headers['content-length'].split(',').map((v) => v.trim()));
    const [only] = values;
    if (values.size !== 1 || !/^\d+$/.test(only!)) return undefined;
    contentLength = Number(only);
  }
  const connection = (headers.connection ?? '').toLowerCase();
  const keepAlive = m[3] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  return { request: { method: m[1]!, path: m[2]!, headers }, contentLength, keepAlive, headers };
}

/** The proxy's own answer to a request meeting an HTTP fault. */
function faultAnswer(fault: HttpFaultMode, format: ErrorFormat, close: boolean): Buffer {
  const id = randomUUID();
  const throttle = fault === 'throttle';
  const [status, reason] = throttle ? (format === 'aws-query' ? [400, 'Bad Request'] : [429, 'Too Many Requests']) : [503, 'Service Unavailable'];
  const body =
    format === 'aws-query'
      ? throttle
        ? `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>${id}</RequestId></ErrorResponse>`
        : `<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>Service is unavailable. Please try again later.</Message></Error><RequestId>${id}</RequestId></ErrorResponse>`
      : throttle
        ? 'rate exceeded\n'
        : 'service unavailable\n';
  const type = format === 'aws-query' ? 'text/xml' : 'text/plain; charset=utf-8';
  return httpAnswer(status, reason, type, body, close, format === 'aws-query' ? { 'x-amzn-RequestId': id } : {});
}

/** 411 for a chunked upload the proxy would have to answer without reading it. */
function refuseChunked(): Buffer {
  return httpAnswer(411, 'Length Required', 'text/plain; charset=utf-8', 'the fault proxy reads no chunked request bodies; send a Content-Length\n', true, {});
}

function httpAnswer(status: number, reason: string, type: string, body: string, close: boolean, extra: Record<string, string>): Buffer {
  const headers = {
    'Content-Type': type,
    'Content-Length': String(Buffer.byteLength(body)),
    Date: new Date().toUTCString(),
    ...extra,
    Connection: close ? 'close' : 'keep-alive',
  };
  const head = `HTTP/1.1 ${status} ${reason}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  return Buffer.from(head + body);
}
