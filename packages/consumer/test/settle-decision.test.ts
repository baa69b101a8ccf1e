import { expect } from 'chai';
import {
  batchBody,
  batchEnd,
  decideSettlement,
  httpBody,
  parseRetryAfter,
  type SettlementInput,
} from '../src/index.js';

const base: SettlementInput = {
  result: { ok: false, status: 503, error: 'HTTP 503', startedAt: 0, durationMs: 5 },
  attempts: 1,
  receivedAt: 0,
  now: 1000,
  secondsRetry: 30,
  maxBackoffSeconds: 3600,
  maxAgeSeconds: 3 * 24 * 3600,
  random: 0.5,
};

describe('decideSettlement', () => {
  it('delivers on success', () => {
    expect(decideSettlement({ ...base, result: { ok: true, status: 200, startedAt: 0, durationMs: 1 } })).to.deep.equal(
      {
        kind: 'delivered',
      },
    );
  });

  it('retries after seconds_retry first, then doubles', () => {
    expect(decideSettlement(base)).to.deep.equal({ kind: 'retry', dueAt: 1000 + 30_000 });
    expect(decideSettlement({ ...base, attempts: 2 })).to.deep.equal({ kind: 'retry', dueAt: 1000 + 60_000 });
    expect(decideSettlement({ ...base, attempts: 4 })).to.deep.equal({ kind: 'retry', dueAt: 1000 + 240_000 });
  });

  it('jitters by at most 20% either way', () => {
    expect(decideSettlement({ ...base, random: 0 })).to.deep.equal({ kind: 'retry', dueAt: 1000 + 24_000 });
    expect(decideSettlement({ ...base, random: 0.999999 })).to.deep.include({ kind: 'retry' });
    const late = decideSettlement({ ...base, random: 0.999999 });
    expect(late.kind === 'retry' && late.dueAt).to.be.at.most(1000 + 36_000);
  });

  it('caps the backoff', () => {
    expect(decideSettlement({ ...base, attempts: 30, random: 0.999 })).to.deep.equal({
      kind: 'retry',
      dueAt: 1000 + 3_600_000,
    });
  });

  it('makes one last attempt at the max age, then a dead letter', () => {
    const nearEnd = { ...base, maxAgeSeconds: 100, now: 90_000 };
    expect(decideSettlement(nearEnd)).to.deep.equal({ kind: 'retry', dueAt: 100_000 });
    const settlement = decideSettlement({ ...nearEnd, now: 100_000, attempts: 7 });
    expect(settlement.kind).to.equal('dead');
    expect(settlement.kind === 'dead' && settlement.reason).to.match(/7 attempts.*HTTP 503/);
  });

  it('never makes a dead letter of an ordered publisher’s message: it retries at most the backoff cap apart', () => {
    const old = { ...base, maxAgeSeconds: 100, now: 10_000_000, attempts: 50, maxBackoffSeconds: 60, ordered: true };
    const settlement = decideSettlement(old);
    expect(settlement.kind).to.equal('retry');
    expect(settlement.kind === 'retry' && settlement.dueAt - old.now).to.be.within(1, 60_000);
  });
});

describe('decideSettlement with the receiver’s answer and the publisher’s policy', () => {
  const answer = (status: number, extra: Partial<SettlementInput['result']> = {}): SettlementInput['result'] => ({
    ok: false,
    status,
    error: `HTTP ${status}`,
    startedAt: 0,
    durationMs: 5,
    ...extra,
  });

  it('makes a dead letter of a 410 Gone at once, saying so, whatever the age or order', () => {
    const settlement = decideSettlement({ ...base, result: answer(410), ordered: true });
    expect(settlement).to.deep.equal({
      kind: 'dead',
      reason: 'the target answered 410 Gone: it will never take this message',
    });
  });

  it('makes a dead letter at once of a status in dead_on_status, and retries the others', () => {
    const settlement = decideSettlement({ ...base, result: answer(400), deadOnStatus: [400, 404] });
    expect(settlement.kind === 'dead' && settlement.reason).to.match(/400, final by the publisher's dead_on_status/);
    expect(decideSettlement({ ...base, result: answer(422), deadOnStatus: [400, 404] }).kind).to.equal('retry');
  });

  it('makes a dead letter after retry_max_attempts attempts, naming it', () => {
    expect(decideSettlement({ ...base, attempts: 2, maxAttempts: 3 }).kind).to.equal('retry');
    const settlement = decideSettlement({ ...base, attempts: 3, maxAttempts: 3 });
    expect(settlement.kind === 'dead' && settlement.reason).to.equal(
      'undelivered after 3 attempts (retry_max_attempts 3); last error: HTTP 503',
    );
  });

  it('names retry_max_age_seconds when the publisher’s own max age made the dead letter', () => {
    const settlement = decideSettlement({ ...base, now: 200_000, maxAgeSeconds: 100, publisherMaxAge: true });
    expect(settlement.kind === 'dead' && settlement.reason).to.match(/retry_max_age_seconds 100 s/);
  });

  it('applies an ordered publisher’s own policy (it never dies of the default max age)', () => {
    const old = { ...base, now: 10_000_000, maxAgeSeconds: 100, ordered: true };
    expect(decideSettlement(old).kind).to.equal('retry');
    expect(decideSettlement({ ...old, publisherMaxAge: true }).kind).to.equal('dead');
    expect(decideSettlement({ ...old, attempts: 5, maxAttempts: 5 }).kind).to.equal('dead');
  });

  it('waits at least the Retry-After of a 429 or 503, capped at the backoff cap', () => {
    const later = decideSettlement({ ...base, result: answer(429, { retryAfterMs: 120_000 }) });
    expect(later).to.deep.equal({ kind: 'retry', dueAt: 1000 + 120_000 });
    const capped = decideSettlement({
      ...base,
      maxBackoffSeconds: 60,
      result: answer(503, { retryAfterMs: 3_600_000 }),
    });
    expect(capped).to.deep.equal({ kind: 'retry', dueAt: 1000 + 60_000 });
    // A Retry-After shorter than the backoff changes nothing.
    expect(decideSettlement({ ...base, result: answer(503, { retryAfterMs: 1000 }) })).to.deep.equal({
      kind: 'retry',
      dueAt: 1000 + 30_000,
    });
  });

  it('keeps to the Retry-After even past the max age: the last attempt comes after it', () => {
    const nearEnd = { ...base, maxAgeSeconds: 100, now: 90_000, result: answer(429, { retryAfterMs: 50_000 }) };
    expect(decideSettlement(nearEnd)).to.deep.equal({ kind: 'retry', dueAt: 140_000 });
  });
});

describe('Retry-After', () => {
  it('reads delay-seconds and HTTP dates, and nothing else', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).to.equal(120_000);
    expect(parseRetryAfter(' 0 ', now)).to.equal(0);
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:01:00 GMT', now)).to.equal(60_000);
    expect(parseRetryAfter('Mon, 31 Dec 2029 23:00:00 GMT', now)).to.equal(0);
    expect(parseRetryAfter('soon', now)).to.equal(undefined);
    expect(parseRetryAfter('-5', now)).to.equal(undefined);
    expect(parseRetryAfter(undefined, now)).to.equal(undefined);
  });
});

describe('the http body', () => {
  const msg = { streamId: '1-0', id: 'm', receivedAt: 1, attributes: { a: '1' } };

  it('merges the attributes into an object payload', () => {
    expect(JSON.parse(httpBody({ ...msg, payload: '{"x":1}' }))).to.deep.equal({ x: 1, attributes: { a: '1' } });
    expect(JSON.parse(httpBody({ ...msg, payload: '{}' }))).to.deep.equal({ attributes: { a: '1' } });
  });

  it("replaces a payload's own attributes key rather than sending it twice", () => {
    expect(httpBody({ ...msg, payload: '{"attributes":{"b":"2"},"x":1}' })).to.equal('{"attributes":{"a":"1"},"x":1}');
  });

  it('sends other payloads as they are', () => {
    expect(httpBody({ ...msg, payload: '[1,2]' })).to.equal('[1,2]');
    expect(httpBody({ ...msg, payload: '"text"' })).to.equal('"text"');
  });
});

describe('a batch', () => {
  const msg = (id: string, payload: string, attributes: Record<string, string> = {}) => ({
    streamId: '1-0',
    id,
    receivedAt: 1,
    payload,
    attributes,
  });

  it('is a JSON array of id, payload exactly as received, and attributes', () => {
    const body = batchBody([msg('t.1-0', '{"n":1.50}', { k: 'v' }), msg('t.1-1', '"x"')]);
    expect(body).to.equal(
      '[{"id":"t.1-0","payload":{"n":1.50},"attributes":{"k":"v"}},{"id":"t.1-1","payload":"x","attributes":{}}]',
    );
    expect(JSON.parse(body)).to.deep.equal([
      { id: 't.1-0', payload: { n: 1.5 }, attributes: { k: 'v' } },
      { id: 't.1-1', payload: 'x', attributes: {} },
    ]);
  });

  it('ends at batch_size messages, or earlier where its message-ids would pass 8 KB', () => {
    const small = Array.from({ length: 10 }, (_, i) => ({ id: `t.${i}` }));
    expect(batchEnd(small, 0, 4)).to.equal(4);
    expect(batchEnd(small, 8, 4)).to.equal(10);
    const long = Array.from({ length: 500 }, (_, i) => ({ id: `${'x'.repeat(100)}.${i}` }));
    const end = batchEnd(long, 0, 500);
    expect(end).to.be.below(500).and.above(50);
    expect(
      long
        .slice(0, end)
        .map((m) => m.id)
        .join(',').length,
    ).to.be.at.most(8 * 1024);
    expect(batchEnd([{ id: 'y'.repeat(10_000) }], 0, 5)).to.equal(1);
  });
});
