/**
 * The fault proxy's HTTP faults in front of a real local HTTP server: `throttle` and `error-5xx`
 * answer each request themselves (the server sees none of them), a kept-alive connection gets
 * one answer per request, `failNext` faults a counted number of requests and lets the rest
 * through, and `pass` forwards.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { queryAction, startFaultProxy, type FaultProxy } from '../../src/sandbox/fault-proxy.js';

let server: Server;
let seen: { method: string; url: string; body: string }[];
let proxy: FaultProxy | undefined;
let agent: Agent;

beforeEach(async () => {
  seen = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`upstream ${seen.length}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  agent = new Agent({ keepAlive: true, maxSockets: 1 });
});
afterEach(async () => {
  agent.destroy();
  await proxy?.stop();
  proxy = undefined;
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const target = () => `127.0.0.1:${(server.address() as AddressInfo).port}`;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The local port of the connection it came on: equal ports, one kept-alive connection. */
  socketPort: number;
}

/** One request through `agent` (one kept-alive connection at most). */
function send(address: string, method = 'GET', path = '/', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`http://${address}${path}`, { method, agent, headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text, socketPort: req.socket!.localPort! }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Write `raw` to the proxy on one socket, in `pieces` writes, and read answers until `n` have come or the socket closes. */
async function rawExchange(address: string, raw: string, n: number, pieces = 1): Promise<{ answers: { status: number; headers: string; body: string }[]; closed: boolean }> {
  const [host, port] = address.split(':');
  const socket = connect(Number(port), host!);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  let buffer = '';
  let closed = false;
  const answers: { status: number; headers: string; body: string }[] = [];
  const done = new Promise<void>((resolve) => {
    const parse = () => {
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.slice(0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        answers.push({ status: Number(head.split(' ')[1]), headers: head, body: buffer.slice(end + 4, end + 4 + length) });
        buffer = buffer.slice(end + 4 + length);
        if (answers.length === n) resolve();
      }
    };
    socket.on('data', (c: Buffer) => {
      buffer += c.toString('latin1');
      parse();
    });
    socket.on('close', () => {
      closed = true;
      resolve();
    });
    socket.on('error', () => undefined);
  });
  const size = Math.ceil(raw.length / pieces);
  for (let i = 0; i < raw.length; i += size) {
    socket.write(raw.slice(i, i + size));
    // Separate TCP segments: let each write leave before the next.
    await new Promise((r) => setImmediate(r));
  }
  await done;
  // A close that follows the last answer at once is part of what is checked.
  await new Promise((r) => setImmediate(r));
  socket.destroy();
  return { answers, closed };
}

const form = 'Action=ModifyListener&Version=2015-12-01&ListenerArn=arn%3Aaws%3Aelasticloadbalancing%3Aus-east-1%3A1%3Alistener%2Fapp%2Fx%2F1%2F2';

describe('fault proxy: HTTP faults', () => {
  it('throttle answers every request itself with the AWS Query throttling error, one answer per request on one kept-alive connection', async () => {
    proxy = await startFaultProxy(target(), 'throttle');
    const answers = [await send(proxy.address, 'POST', '/', form), await send(proxy.address, 'POST', '/', form), await send(proxy.address)];
    expect(answers.map((a) => a.status)).toEqual([400, 400, 400]);
    expect(answers[0]!.headers['content-type']).toBe('text/xml');
    expect(answers[0]!.headers.connection).toBe('keep-alive');
    expect(answers[0]!.body).toMatch(/^<ErrorResponse><Error><Type>Sender<\/Type><Code>Throttling<\/Code><Message>Rate exceeded<\/Message><\/Error><RequestId>[0-9a-f-]{36}<\/RequestId><\/ErrorResponse>$/);
    expect(answers[0]!.headers['x-amzn-requestid']).toBe(/<RequestId>(.+)<\/RequestId>/.exec(answers[0]!.body)![1]);
    expect(new Set(answers.map((a) => a.socketPort)).size).toBe(1);
    expect([proxy.connections, proxy.requests, proxy.faulted, seen.length]).toEqual([1, 3, 3, 0]);
  });

  it('error-5xx answers 503 ServiceUnavailable itself; with the plain format the body is a line of text', async () => {
    proxy = await startFaultProxy(target(), 'error-5xx');
    const aws = await send(proxy.address, 'POST', '/', form);
    expect([aws.status, aws.headers['content-type']]).toEqual([503, 'text/xml']);
    expect(aws.body).toMatch(/<Type>Receiver<\/Type><Code>ServiceUnavailable<\/Code>/);
    const plain = await startFaultProxy(target(), 'error-5xx', { errorFormat: 'plain' });
    try {
      const answer = await send(plain.address, 'PUT', '/cutover/routes', 'generation 3\n');
      expect([answer.status, answer.headers['content-type'], answer.body]).toEqual([503, 'text/plain; charset=utf-8', 'service unavailable\n']);
      plain.mode = 'throttle';
      expect((await send(plain.address)).status).toBe(429);
    } finally {
      await plain.stop();
    }
    expect(seen).toEqual([]);
  });

  it('reads requests sent in one write or split byte by byte, answering each once and keeping the connection', async () => {
    proxy = await startFaultProxy(target(), 'throttle');
    const one = `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${form.length}\r\n\r\n${form}`;
    const batched = await rawExchange(proxy.address, one + one + 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n', 3);
    expect([batched.answers.map((a) => a.status), batched.closed]).toEqual([[400, 400, 400], false]);
    const split = await rawExchange(proxy.address, one + one, 2, one.length * 2);
    expect([split.answers.map((a) => a.status), split.closed]).toEqual([[400, 400], false]);
    expect([proxy.requests, proxy.faulted, seen.length]).toEqual([5, 5, 0]);
  });

  it('closes after its answer when the client asks to, and refuses a chunked upload with 411 and a close', async () => {
    proxy = await startFaultProxy(target(), 'error-5xx');
    const closing = await rawExchange(proxy.address, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 2);
    expect([closing.answers.map((a) => a.status), closing.closed]).toEqual([[503], true]);
    expect(closing.answers[0]!.headers).toMatch(/\r\nConnection: close/);
    const chunked = await rawExchange(proxy.address, 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n', 2);
    expect([chunked.answers.map((a) => a.status), chunked.closed]).toEqual([[411], true]);
    expect(seen).toEqual([]);
  });

  it('failNext faults the next n requests (those matched) and lets the later ones through, on the same connection', async () => {
    proxy = await startFaultProxy(target());
    proxy.failNext('throttle', 2);
    const statuses = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await send(proxy.address, 'POST', `/${i}`, form)).status);
    expect(statuses).toEqual([400, 400, 200, 200]);
    expect(seen.map((r) => r.url)).toEqual(['/2', '/3']);
    expect([proxy.pending, proxy.faulted, proxy.connections]).toEqual([0, 2, 1]);

    proxy.failNext('error-5xx', 1, (r) => queryAction(r) === 'DeleteRule');
    const describe = await send(proxy.address, 'POST', '/', 'Action=DescribeRules&Version=2015-12-01');
    const del = await send(proxy.address, 'POST', '/', 'Action=DeleteRule&Version=2015-12-01');
    const again = await send(proxy.address, 'POST', '/', 'Action=DeleteRule&Version=2015-12-01');
    expect([describe.status, del.status, again.status]).toEqual([200, 503, 200]);
    expect(seen.map((r) => r.body)).toEqual([form, form, 'Action=DescribeRules&Version=2015-12-01', 'Action=DeleteRule&Version=2015-12-01']);

    proxy.failNext('throttle', 5);
    proxy.mode = 'pass'; // setting the mode drops what failNext still owed
    expect([proxy.pending, (await send(proxy.address)).status]).toEqual([0, 200]);
  });

  it('pass forwards requests and answers both ways, bodies intact, and a fault set later meets the kept-alive connection', async () => {
    proxy = await startFaultProxy(target());
    const first = await send(proxy.address, 'POST', '/a', form);
    const second = await send(proxy.address, 'GET', '/b');
    expect([first.status, first.body, second.status, second.body]).toEqual([200, 'upstream 1', 200, 'upstream 2']);
    expect(seen).toEqual([{ method: 'POST', url: '/a', body: form }, { method: 'GET', url: '/b', body: '' }]);
    proxy.mode = 'error-5xx';
    const third = await send(proxy.address, 'GET', '/c');
    expect([third.status, third.socketPort, seen.length]).toEqual([503, first.socketPort, 2]);
    proxy.mode = 'pass';
    expect((await send(proxy.address, 'GET', '/d')).body).toBe('upstream 3');
    expect([proxy.connections, proxy.requests, proxy.faulted]).toEqual([1, 4, 1]);
  });
});
