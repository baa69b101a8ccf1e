/**
 * The attempt log's compact text (attempt-record.ts), without Redis: what
 * `encodeRecords` writes is what `decodeItem` reads back, item by item, as
 * `attempts.lua` hands the items over (the record's score, its header and
 * one item).
 */
import { expect } from 'chai';
import {
  RECORD_SPAN_MS,
  decodeItem,
  decodeRetryState,
  encodeRecords,
  encodeRetryState,
  recordTag,
  skippedIn,
  type LogRecord,
  type LoggedAttempt,
} from '../src/index.js';

const T0 = 1_700_000_000_000;
const SETTLED = T0 + 5_000;

/** Every item of one record, decoded as findMessage gets them from attempts.lua. */
function decodeRecord(record: LogRecord): (LoggedAttempt | undefined)[] {
  const [header, ...items] = record.member.split(';');
  return items.map((item) => decodeItem(record.score, header as string, item));
}

function roundTrip(attempts: LoggedAttempt[], settledAt = SETTLED): LoggedAttempt[] {
  return encodeRecords(attempts, settledAt, recordTag).flatMap((r) => decodeRecord(r) as LoggedAttempt[]);
}

let tags = 0;
const fixedTag = (): string => `t${++tags}`;

describe('attempt records', () => {
  it('are none for no attempts', () => {
    expect(encodeRecords([], SETTLED, recordTag)).to.deep.equal([]);
  });

  it('give back a delivery: stream id, start, duration and status', () => {
    const delivered: LoggedAttempt = {
      streamId: `${T0 + 12}-3`,
      startedAt: SETTLED - 40,
      durationMs: 7,
      status: 200,
      outcome: 'delivered',
    };
    expect(roundTrip([delivered])).to.deep.equal([delivered]);
  });

  it('write a first-attempt delivery with the common status in a dozen bytes or so', () => {
    const attempts = Array.from({ length: 100 }, (_, i) => ({
      streamId: `${T0 + i * 10}-0`,
      startedAt: SETTLED - 3,
      durationMs: 2,
      status: 200,
      outcome: 'delivered' as const,
    }));
    const [record, ...more] = encodeRecords(attempts, SETTLED, fixedTag);
    expect(more).to.have.length(0);
    const items = record!.member.split(';').slice(1);
    expect(items[1]).to.equal('10-0:1:2');
    expect(
      items.every((item) => item.length <= 12),
      items.join(';'),
    ).to.equal(true);
  });

  it('give back a retry with its status and error, and a retry whose error is just its status', () => {
    const attempts: LoggedAttempt[] = [
      {
        streamId: `${T0}-0`,
        startedAt: SETTLED - 900,
        durationMs: 30,
        status: 503,
        outcome: 'retry',
        error: 'HTTP 503',
      },
      {
        streamId: `${T0 + 1}-0`,
        startedAt: SETTLED - 800,
        durationMs: 5000,
        outcome: 'retry',
        error: 'timeout after 5 s',
      },
      { streamId: `${T0 + 2}-0`, startedAt: SETTLED - 700, durationMs: 4, status: 200, outcome: 'delivered' },
    ];
    expect(roundTrip(attempts)).to.deep.equal(attempts);
  });

  it('give back a dead letter with its status and error', () => {
    const dead: LoggedAttempt = {
      streamId: `${T0 + 5}-1`,
      startedAt: SETTLED - 20,
      durationMs: 9,
      status: 410,
      outcome: 'dead',
      error: 'HTTP 410',
    };
    const other: LoggedAttempt = { ...dead, streamId: `${T0 + 6}-0`, error: 'gone for good' };
    expect(roundTrip([dead, other])).to.deep.equal([dead, other]);
  });

  it('give back Pub/Sub attempts, which have no status', () => {
    const attempts: LoggedAttempt[] = [
      { streamId: `${T0}-0`, startedAt: SETTLED - 50, durationMs: 12, outcome: 'delivered' },
      { streamId: `${T0}-1`, startedAt: SETTLED - 50, durationMs: 14, outcome: 'retry', error: 'UNAVAILABLE' },
      { streamId: `${T0 + 1}-0`, startedAt: SETTLED - 50, durationMs: 11, outcome: 'delivered' },
    ];
    expect(roundTrip(attempts)).to.deep.equal(attempts);
  });

  it('give back an attempt without a status in a record whose common status is 200 (a refused connection among deliveries)', () => {
    const attempts: LoggedAttempt[] = [
      { streamId: `${T0}-0`, startedAt: SETTLED - 50, durationMs: 3, status: 200, outcome: 'delivered' },
      { streamId: `${T0}-1`, startedAt: SETTLED - 50, durationMs: 3, status: 200, outcome: 'delivered' },
      { streamId: `${T0}-2`, startedAt: SETTLED - 50, durationMs: 1, outcome: 'retry', error: 'connect ECONNREFUSED' },
    ];
    expect(roundTrip(attempts)).to.deep.equal(attempts);
  });

  it('give back the outcomes of pull leases with their worker and lease end', () => {
    const worker = { host: 'w-1', pid: 42, name: 'resizer' };
    const lease = (streamId: string, outcome: LoggedAttempt['outcome'], error?: string): LoggedAttempt => ({
      streamId,
      startedAt: SETTLED - 2_000,
      durationMs: 1_500,
      outcome,
      worker,
      leaseExpiresAt: SETTLED + 28_000,
      ...(error === undefined ? {} : { error }),
    });
    const attempts = [
      lease(`${T0}-0`, 'completed'),
      lease(`${T0}-1`, 'replaced'),
      lease(`${T0}-2`, 'expired'),
      lease(`${T0}-3`, 'worker_retry', 'busy, later'),
      lease(`${T0}-4`, 'failed', 'cannot parse'),
      { ...lease(`${T0}-5`, 'completed'), worker: {} },
    ];
    expect(roundTrip(attempts)).to.deep.equal(attempts);
  });

  it('keep errors and worker names with ; : | % and newlines intact', () => {
    const nasty = 'a;b:c|d%e%25f\ng\r\nh ;;:: || %%';
    const attempts: LoggedAttempt[] = [
      { streamId: `${T0}-0`, startedAt: SETTLED - 9, durationMs: 1, status: 500, outcome: 'retry', error: nasty },
      { streamId: `${T0}-1`, startedAt: SETTLED - 9, durationMs: 1, outcome: 'dead', error: `${nasty} é 🚀` },
      {
        streamId: `${T0}-2`,
        startedAt: SETTLED - 9,
        durationMs: 1,
        outcome: 'failed',
        error: nasty,
        worker: { host: nasty, name: ';:|%' },
        leaseExpiresAt: SETTLED + 1,
      },
    ];
    const records = encodeRecords(attempts, SETTLED, recordTag);
    expect(records).to.have.length(1);
    // One header and one item per attempt: no separator leaked out of a field.
    expect(records[0]!.member.split(';')).to.have.length(4);
    expect(records[0]!.member).not.to.include('\n');
    expect(roundTrip(attempts)).to.deep.equal(attempts);
  });

  it('encode an error cut in the middle of a surrogate pair (a reason sliced to its maximum length) without throwing', () => {
    const cut = '🚀🚀'.slice(0, 3);
    const attempt: LoggedAttempt = {
      streamId: `${T0}-0`,
      startedAt: SETTLED - 9,
      durationMs: 1,
      outcome: 'worker_retry',
      error: cut,
      worker: {},
      leaseExpiresAt: SETTLED,
    };
    const [back] = roundTrip([attempt]);
    expect(back?.error).to.be.a('string');
    expect(back?.error?.startsWith('🚀')).to.equal(true);
  });

  it('give every record a header of its own, also for the same batch settled twice in one millisecond', () => {
    const attempts: LoggedAttempt[] = [
      { streamId: `${T0}-0`, startedAt: SETTLED - 3, durationMs: 2, status: 200, outcome: 'delivered' },
    ];
    const members = new Set<string>();
    for (let i = 0; i < 1000; i++) members.add(encodeRecords(attempts, SETTLED, recordTag)[0]!.member);
    expect(members.size).to.equal(1000);
    for (const member of members) {
      const header = member.split(';')[0]!;
      expect(header).to.match(/^[0-9a-z]+\.[A-Za-z0-9_-]+\|200$/);
    }
  });

  it('cut a batch whose messages were received more than RECORD_SPAN_MS apart into records scored by their oldest message', () => {
    const at = (ms: number, seq = 0): LoggedAttempt => ({
      streamId: `${ms}-${seq}`,
      startedAt: SETTLED - 10,
      durationMs: 2,
      status: 200,
      outcome: 'delivered',
    });
    // Given out of order: a retry of an old message settled with new ones.
    const attempts = [at(T0 + RECORD_SPAN_MS + 1), at(T0), at(T0 + RECORD_SPAN_MS), at(T0 + 3 * RECORD_SPAN_MS, 4)];
    const records = encodeRecords(attempts, SETTLED, recordTag);
    expect(records.map((r) => r.score)).to.deep.equal([T0, T0 + RECORD_SPAN_MS + 1, T0 + 3 * RECORD_SPAN_MS]);
    expect(records.map((r) => decodeRecord(r).map((a) => a?.streamId))).to.deep.equal([
      [`${T0}-0`, `${T0 + RECORD_SPAN_MS}-0`],
      [`${T0 + RECORD_SPAN_MS + 1}-0`],
      [`${T0 + 3 * RECORD_SPAN_MS}-4`],
    ]);
    for (const r of records) {
      for (const a of decodeRecord(r)) {
        const ms = Number(a!.streamId.split('-')[0]);
        expect(ms - r.score).to.be.within(0, RECORD_SPAN_MS);
      }
    }
  });

  it("give back a failed attempt's answer, with ; : | % and newlines intact, after its other fields", () => {
    const answer = 'line 1: {"error": "no such user"}\r\n;|%:\u00e9';
    const a: LoggedAttempt = {
      streamId: `${T0}-0`,
      startedAt: T0 + 10,
      durationMs: 4,
      status: 422,
      outcome: 'retry',
      response: answer,
    };
    const [back] = roundTrip([a]);
    expect(back).to.deep.equal({ ...a, error: 'HTTP 422' });
  });

  it('give back a message skipped by the filter, and tell which messages of a record were skipped', () => {
    const skipped: LoggedAttempt = { streamId: `${T0}-0`, startedAt: T0 + 10, durationMs: 0, outcome: 'skipped' };
    const delivered: LoggedAttempt = {
      streamId: `${T0}-1`,
      startedAt: T0 + 10,
      durationMs: 3,
      status: 200,
      outcome: 'delivered',
    };
    const [record] = encodeRecords([skipped, delivered], SETTLED, recordTag);
    expect(decodeRecord(record!)).to.deep.equal([skipped, delivered]);
    expect(skippedIn(record!.score, record!.member)).to.deep.equal([`${T0}-0`]);
    expect(skippedIn(record!.score, encodeRecords([delivered], SETTLED, recordTag)[0]!.member)).to.deep.equal([]);
  });

  it('decode nothing from text that is not an item', () => {
    expect(decodeItem(T0, 'no header', '1-0:2:3')).to.equal(undefined);
    expect(decodeItem(T0, 'k.t|200', 'garbage')).to.equal(undefined);
    expect(decodeItem(T0, 'k.t|200', '1-0:2')).to.equal(undefined);
    expect(decodeItem(T0, 'k.t|200', '1-0:2:3::?')).to.equal(undefined);
  });
});

describe('retry state', () => {
  it('gives back the count and the last attempt', () => {
    const last = { startedAt: T0, durationMs: 31, status: 503, error: 'HTTP 503' };
    const text = encodeRetryState(3, last);
    expect(decodeRetryState(text)).to.deep.equal({ count: 3, last });
  });

  it('keeps an error with | % ; : and newlines, and leaves out a status there was none of', () => {
    const last = { startedAt: T0, durationMs: 5000, error: 'a|b%c;d:e\nf' };
    const text = encodeRetryState(1, last);
    expect(text.split('|')).to.have.length(5);
    expect(decodeRetryState(text)).to.deep.equal({ count: 1, last });
  });

  it("keeps the start of a failed attempt's answer, and reads a state written without one", () => {
    const last = { startedAt: T0, durationMs: 7, status: 500, error: 'HTTP 500', response: 'oops | 50% ; done' };
    expect(decodeRetryState(encodeRetryState(4, last))).to.deep.equal({ count: 4, last });
    expect(decodeRetryState(`4|${T0}|7|500|HTTP%20500`)).to.deep.equal({
      count: 4,
      last: { startedAt: T0, durationMs: 7, status: 500, error: 'HTTP 500' },
    });
  });

  it('reads a bare count (written before the retry state) and nothing from a missing value', () => {
    expect(decodeRetryState('4')).to.deep.equal({ count: 4 });
    expect(decodeRetryState(null)).to.equal(undefined);
    expect(decodeRetryState(undefined)).to.equal(undefined);
    expect(decodeRetryState('x|1|2||')).to.equal(undefined);
  });
});
