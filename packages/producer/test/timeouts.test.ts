/**
 * The producer's server against slow and idle clients, over real sockets:
 * REQUEST_TIMEOUT_MS, HEADERS_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS and
 * MAX_CONNECTIONS. Each client waits for the server to close its
 * connection (a condition), never for a fixed time.
 */
import { expect } from 'chai';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startApi, waitFor, type Api } from './helpers.js';

interface Client {
  readonly socket: Socket;
  /** Everything the server sent. */
  received(): string;
  /** Bytes this client wrote. */
  sent(): number;
  write(text: string): void;
  /** Resolves when the server has closed the connection. */
  readonly closed: Promise<void>;
  /** Writes one byte of `text` every `ms` until done or closed. */
  trickle(text: string, ms: number): void;
}

function client(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (d: Buffer) => (data += d.toString()));
    // The server may reset a connection it drops; what the test looks at is that it ended.
    socket.on('error', () => undefined);
    const closed = new Promise<void>((done) =>
      socket.once('close', () => {
        clearInterval(timer);
        done();
      }),
    );
    const write = (text: string): void => {
      if (socket.destroyed) return;
      socket.write(text);
      sent += Buffer.byteLength(text);
    };
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => data,
        sent: () => sent,
        write,
        closed,
        trickle(text, ms) {
          let i = 0;
          timer = setInterval(() => {
            if (i >= text.length || socket.destroyed) return clearInterval(timer);
            write(text[i++]!);
          }, ms);
        },
      }),
    );
    socket.once('error', reject);
  });
}

const ERROR_408 = JSON.stringify({ data: { errors: { request: ['took too long to arrive'] } } });

describe('slow and idle clients', function () {
  this.timeout(30_000);
  let api: Api;
  let port: number;

  before(async () => {
    api = await startApi({
      REQUEST_TIMEOUT_MS: '1000',
      HEADERS_TIMEOUT_MS: '500',
      CONNECTION_TIMEOUT_MS: '5000',
      KEEP_ALIVE_TIMEOUT_MS: '300',
      MAX_CONNECTIONS: '3',
    });
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    port = (api.app.server.address() as AddressInfo).port;
  });
  after(async () => {
    await api.close();
  });

  it('answers 408 in the error shape and disconnects a client that sends its body a byte at a time', async () => {
    const body = JSON.stringify({ topic: 'slow', payload: 'x'.repeat(200) });
    const c = await client(port);
    c.write(
      `POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    const headerBytes = c.sent();
    c.trickle(body, 20);
    await c.closed;
    expect(c.received()).to.match(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(c.received().endsWith(`\r\n\r\n${ERROR_408}`), c.received()).to.equal(true);
    expect(c.sent() - headerBytes, 'body bytes sent before the server gave up').to.be.below(body.length);
  });

  it('answers 408 and disconnects a client that sends its headers a byte at a time', async () => {
    const c = await client(port);
    c.write('GET /api/health HTTP/1.1\r\nHost: x\r\n');
    c.trickle(`X-Slow: ${'y'.repeat(500)}\r\n\r\n`, 20);
    await c.closed;
    expect(c.received()).to.match(/^HTTP\/1\.1 408 /);
    expect(c.received()).to.contain(ERROR_408);
  });

  it('disconnects a client that connects and sends nothing', async () => {
    const c = await client(port);
    await c.closed;
    expect(c.sent()).to.equal(0);
  });

  it('closes a keep-alive connection left idle after an answer for KEEP_ALIVE_TIMEOUT_MS', async () => {
    const c = await client(port);
    c.write('GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await waitFor(() => c.received().includes('{"status":"ok"}'), 'the health answer');
    expect(c.received()).to.match(/^HTTP\/1\.1 200 /);
    expect(c.received().toLowerCase()).to.contain('keep-alive: timeout=');
    await c.closed;
  });

  it('closes connections past MAX_CONNECTIONS at once, and serves again when those held open end', async () => {
    const held = await Promise.all([client(port), client(port), client(port)]);
    for (const c of held) c.write('GET /api/health HTTP/1.1\r\nHost: x\r\n');
    await waitFor(
      () => new Promise<boolean>((resolve) => api.app.server.getConnections((err, n) => resolve(!err && n === 3))),
      'the server to hold three connections',
    );
    const extra = await client(port);
    extra.write('GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n');
    await extra.closed;
    expect(extra.received()).to.equal('');
    // The three never finish their headers: the headers timeout ends them, and the server takes new clients.
    await Promise.all(held.map((c) => c.closed));
    const res = await fetch(`http://127.0.0.1:${port}/api/health`);
    expect(res.status).to.equal(200);
  });
});
