/**
 * Fault: SIGTERM on the producer and on a consumer under load (a rolling
 * restart). In-flight requests and deliveries complete; nothing is lost.
 */
import { expect } from 'chai';
import { request as httpRequest } from 'node:http';
import { waitFor } from '@postoffice/test-support';
import {
  FAST_FAILOVER_ENV,
  faultWorld,
  createPublisher,
  createTopic,
  duplicates,
  lost,
  pool,
  rawRequest,
  report,
} from '@postoffice/test-support/faults';

const CLIENTS = 8;
const SLOW_REQUESTS = 5;

describe('fault: SIGTERM on the producer and a consumer under load', function () {
  this.timeout(300_000);
  let stopping = false;
  const world = faultWorld({ env: FAST_FAILOVER_ENV, stopping: () => (stopping = true) });

  /**
   * A POST /api/messages whose body is sent in two halves, `gapMs` apart:
   * `sent` resolves once the first half is on the wire and the producer has
   * the request. The headers carry `Expect: 100-continue` and the body waits
   * for the `100 Continue`, which the server sends once it has parsed them:
   * bytes merely queued in the kernel are not yet a request in flight (a
   * server that stops listening resets such a connection, see below).
   */
  function slowPost(
    url: string,
    body: string,
    gapMs: number,
  ): { sent: Promise<void>; answer: Promise<{ status: number; body: string }> } {
    const target = new URL(url);
    let onSent: () => void = () => {};
    const sent = new Promise<void>((resolve) => (onSent = resolve));
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: 'POST',
          path: '/api/messages',
          agent: false,
          headers: {
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(body)),
            expect: '100-continue',
          },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      const half = Math.floor(body.length / 2);
      req.on('continue', () => {
        req.write(body.slice(0, half), () => {
          onSent();
          setTimeout(() => req.end(body.slice(half)), gapMs);
        });
      });
      req.flushHeaders();
    });
    return { sent, answer };
  }

  it('finishes in-flight requests and deliveries, exits 0, and loses nothing', async () => {
    let producer = await world.start('producer');
    const port = String(producer.port);
    const topic = await createTopic(producer, 'rolling');
    await createPublisher(producer, { topic, target: world.sink.url('/hook'), concurrency: 25, seconds_timeout: 2 });
    const consumers = [await world.start('consumer'), await world.start('consumer')];
    // Deliveries take 20 ms, so some are always in flight.
    world.sink.delayMs = 20;

    // Load: CLIENTS loops of POST /api/messages, one connection each (no keep-alive).
    const acknowledged: string[] = [];
    const outcomes = new Map<string, number>();
    let n = 0;
    const publishing = pool(CLIENTS, CLIENTS, async () => {
      while (!stopping) {
        let outcome: string;
        try {
          const res = await rawRequest(
            producer.url,
            'POST',
            '/api/messages',
            JSON.stringify({ topic, payload: { n: n++ } }),
            { 'content-type': 'application/json' },
          );
          outcome = String(res.status);
          if (res.status === 201) acknowledged.push((JSON.parse(res.body) as { data: { id: string } }).data.id);
        } catch (err) {
          outcome = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        }
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (outcome !== '201') await new Promise((r) => setTimeout(r, 20));
      }
    });
    await waitFor(() => acknowledged.length >= 2000, 'load under way', 60_000);

    // Producer: requests whose body is half sent when SIGTERM arrives still get their 201.
    const slow = Array.from({ length: SLOW_REQUESTS }, (_, i) =>
      slowPost(producer.url, JSON.stringify({ topic, payload: { slow: i } }), 500),
    );
    await Promise.all(slow.map((s) => s.sent));
    const producerStoppedAt = Date.now();
    producer.kill('SIGTERM');
    const slowAnswers = await Promise.all(slow.map((s) => s.answer));
    const slowStatuses = slowAnswers.map((a) => a.status);
    for (const a of slowAnswers)
      if (a.status === 201) acknowledged.push((JSON.parse(a.body) as { data: { id: string } }).data.id);
    expect(await producer.exited).to.equal(0);
    producer = await world.start('producer', { PORT: port });
    const producerDownMs = Date.now() - producerStoppedAt;
    const afterProducer = acknowledged.length;
    await waitFor(() => acknowledged.length >= afterProducer + 1000, 'load to resume', 60_000);

    // Consumer: SIGTERM while deliveries are in flight; it drains and exits 0, a new one takes its place.
    await waitFor(() => world.sink.inFlight.now > 0, 'deliveries in flight', 30_000, 5);
    const inFlightAtStop = world.sink.inFlight.now;
    consumers[0]!.kill('SIGTERM');
    expect(await consumers[0]!.exited).to.equal(0);
    await world.start('consumer');
    const afterConsumer = acknowledged.length;
    await waitFor(() => acknowledged.length >= afterConsumer + 1000, 'more load', 60_000);

    stopping = true;
    await publishing;
    await waitFor(
      () => acknowledged.every((id) => world.sink.counts.has(id)),
      'every acknowledged message delivered',
      120_000,
      100,
    );
    const figures = {
      acknowledged: acknowledged.length,
      lost: lost(acknowledged, world.sink.counts),
      duplicates: duplicates(world.sink.counts),
      outcomes: Object.fromEntries(outcomes),
      inFlightRequestsAtProducerStop: SLOW_REQUESTS,
      theirStatuses: slowStatuses,
      producerDownMs,
      deliveriesInFlightAtConsumerStop: inFlightAtStop,
    };
    report('sigterm', figures);
    expect(slowStatuses).to.deep.equal(Array.from({ length: SLOW_REQUESTS }, () => 201));
    expect(figures.lost).to.equal(0);
    // A drained node leaves nothing in flight behind it: no delivery is sent twice.
    expect(figures.duplicates).to.equal(0);
    // Clients saw a 201, or a connection refused (nothing listening) or reset: a connection the kernel had
    // queued but the process had not accepted (or whose request had not arrived) when it stopped listening.
    // Requests the producer was reading when SIGTERM came were answered (the slow ones above).
    expect([...outcomes.keys()].filter((o) => !['201', 'ECONNREFUSED', 'ECONNRESET'].includes(o))).to.deep.equal([]);
  });
});
