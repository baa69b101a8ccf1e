import { expect } from 'chai';
import { decideFate, httpBody, type FateInput } from '../src/index.js';

const base: FateInput = {
  result: { ok: false, status: 503, error: 'HTTP 503', startedAt: 0, durationMs: 5 },
  attempts: 1,
  receivedAt: 0,
  now: 1000,
  secondsRetry: 30,
  maxBackoffSeconds: 3600,
  maxAgeSeconds: 3 * 24 * 3600,
  random: 0.5,
};

describe('decideFate', () => {
  it('delivers on success', () => {
    expect(decideFate({ ...base, result: { ok: true, status: 200, startedAt: 0, durationMs: 1 } })).to.deep.equal({
      kind: 'delivered',
    });
  });

  it('retries after seconds_retry first, then doubles', () => {
    expect(decideFate(base)).to.deep.equal({ kind: 'retry', dueAt: 1000 + 30_000 });
    expect(decideFate({ ...base, attempts: 2 })).to.deep.equal({ kind: 'retry', dueAt: 1000 + 60_000 });
    expect(decideFate({ ...base, attempts: 4 })).to.deep.equal({ kind: 'retry', dueAt: 1000 + 240_000 });
  });

  it('jitters by at most 20% either way', () => {
    expect(decideFate({ ...base, random: 0 })).to.deep.equal({ kind: 'retry', dueAt: 1000 + 24_000 });
    expect(decideFate({ ...base, random: 0.999999 })).to.deep.include({ kind: 'retry' });
    const late = decideFate({ ...base, random: 0.999999 });
    expect(late.kind === 'retry' && late.dueAt).to.be.at.most(1000 + 36_000);
  });

  it('caps the backoff', () => {
    expect(decideFate({ ...base, attempts: 30, random: 0.999 })).to.deep.equal({
      kind: 'retry',
      dueAt: 1000 + 3_600_000,
    });
  });

  it('makes one last attempt at the max age, then a dead letter', () => {
    const nearEnd = { ...base, maxAgeSeconds: 100, now: 90_000 };
    expect(decideFate(nearEnd)).to.deep.equal({ kind: 'retry', dueAt: 100_000 });
    const fate = decideFate({ ...nearEnd, now: 100_000, attempts: 7 });
    expect(fate.kind).to.equal('dead');
    expect(fate.kind === 'dead' && fate.reason).to.match(/7 attempts.*HTTP 503/);
  });

  it('never makes a dead letter of an ordered publisher’s message: it retries at most the backoff cap apart', () => {
    const old = { ...base, maxAgeSeconds: 100, now: 10_000_000, attempts: 50, maxBackoffSeconds: 60, ordered: true };
    const fate = decideFate(old);
    expect(fate.kind).to.equal('retry');
    expect(fate.kind === 'retry' && fate.dueAt - old.now).to.be.within(1, 60_000);
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
