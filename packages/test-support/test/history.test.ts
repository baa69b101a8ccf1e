/**
 * checkHistory (history.ts) on made-up histories: a sound one passes (503s,
 * the head of an ordered publisher again right after itself, duplicates
 * within the bound), and each broken promise fails it: a lost 201, an
 * ordered publisher out of order, a 500, duplicates over the bound.
 */
import { expect } from 'chai';
import { checkHistory, type Delivery, type FaultTimes, type Publish, type PublisherHistory } from '../src/history.js';

const FAULT: FaultTimes = { start: 10_000, end: 12_000 };

/** A 201 for message `n` (id `t.<n>-0`), sent at `sentAt`. */
function ok(n: number, sentAt: number): Publish {
  return { sentAt, at: sentAt + 5, status: 201, id: `t.${n}-0` };
}

function delivered(ns: readonly number[], at: (i: number) => number): Delivery[] {
  return ns.map((n, i) => ({ id: `t.${n}-0`, at: at(i) }));
}

/**
 * Messages 0–9 before the fault, 503s during it, 10–19 after it ended;
 * both publishers receive them all in order, 30 ms apart from time 0.
 */
function soundHistory(): { publishes: Publish[]; plain: Delivery[]; ordered: Delivery[] } {
  const publishes: Publish[] = [];
  for (let n = 0; n < 10; n++) publishes.push(ok(n, 1000 + n * 100));
  publishes.push({ sentAt: 10_100, at: 10_200, status: 503 }, { sentAt: 11_000, at: 11_100, status: 503 });
  for (let n = 10; n < 20; n++) publishes.push(ok(n, 12_500 + n * 10));
  const all = Array.from({ length: 20 }, (_, n) => n);
  const at = (i: number): number => (i < 10 ? 2000 + i * 30 : 13_000 + i * 30);
  return { publishes, plain: delivered(all, at), ordered: delivered(all, at) };
}

function check(publishes: Publish[], plain: Delivery[], ordered: Delivery[]): ReturnType<typeof checkHistory> {
  const publishers: PublisherHistory[] = [
    { name: 'plain', ordered: false, maxInFlight: 2, deliveries: plain },
    { name: 'ordered', ordered: true, maxInFlight: 2, deliveries: ordered },
  ];
  return checkHistory({ publishes, publishers, fault: FAULT });
}

describe('checkHistory', () => {
  it('passes a sound history and gives its figures', () => {
    const { publishes, plain, ordered } = soundHistory();
    // The ordered publisher's head again right after itself, within the window.
    ordered.splice(11, 0, { id: 't.10-0', at: 13_305 });
    // Two duplicates of the plain one: within the bound of 2 in flight (+ first deliveries in the window).
    plain.push({ id: 't.3-0', at: 14_000 }, { id: 't.4-0', at: 14_001 });
    const verdict = check(publishes, plain, ordered);
    expect(verdict.problems).to.deep.equal([]);
    expect(verdict.acknowledged).to.equal(20);
    expect(verdict.unavailable).to.equal(2);
    expect(verdict.statuses).to.deep.equal({ 201: 20, 503: 2 });
    expect(verdict.publishers.ordered?.duplicates).to.equal(1);
    expect(verdict.publishers.plain?.duplicates).to.equal(2);
    // Message 10 (sent 12,600) reached both at 13,300: recovered; the window runs 9,000 to 14,300.
    expect(verdict.recoveredAt).to.equal(13_300);
    expect(verdict.window).to.deep.equal({ from: 9000, to: 14_300 });
    expect(verdict.publishers.plain?.firstInWindow).to.equal(10);
    expect(verdict.publishers.plain?.bound).to.equal(12);
    expect(verdict.first201Ms).to.equal(12_605 - 10_000);
    expect(verdict.firstDeliveryMs).to.deep.equal({ plain: 3300, ordered: 3300 });
  });

  it('fails when a message answered 201 did not reach one of the publishers', () => {
    const { publishes, plain, ordered } = soundHistory();
    const verdict = check(
      publishes,
      plain,
      ordered.filter((d) => d.id !== 't.5-0'),
    );
    expect(verdict.publishers.ordered?.lost).to.equal(1);
    expect(verdict.publishers.plain?.lost).to.equal(0);
    expect(verdict.problems).to.have.length(1);
    expect(verdict.problems[0]).to.match(/^ordered: 1 message\(s\) answered 201 never delivered \(t\.5-0\)/);
  });

  it('fails when an ordered publisher receives a message after a later one', () => {
    const { publishes, plain, ordered } = soundHistory();
    // 4 again after 5 (not right after itself): a takeover that went back.
    ordered.splice(6, 0, { id: 't.4-0', at: 2185 });
    const verdict = check(publishes, plain, ordered);
    expect(verdict.publishers.ordered?.outOfOrder).to.deep.equal(['t.5-0 then t.4-0']);
    expect(verdict.problems).to.have.length(1);
    expect(verdict.problems[0]).to.match(/^ordered: 1 delivery\(ies\) out of order/);
    // The same sequence is no problem for an unordered publisher.
    expect(check(publishes, ordered, plain).problems).to.deep.equal([]);
  });

  it('fails on a 500 (any 5xx but 503), not on a 503 or a connection error', () => {
    const { publishes, plain, ordered } = soundHistory();
    publishes.push({ sentAt: 10_500, at: 10_510, status: 0, error: 'ECONNRESET' });
    expect(check(publishes, plain, ordered).problems).to.deep.equal([]);
    publishes.push({ sentAt: 10_600, at: 10_610, status: 500 }, { sentAt: 10_700, at: 10_710, status: 502 });
    const verdict = check(publishes, plain, ordered);
    expect(verdict.serverErrors).to.equal(2);
    expect(verdict.connectionErrors).to.equal(1);
    expect(verdict.problems).to.deep.equal(['2 answer(s) 5xx other than 503: 500 ×1, 502 ×1']);
  });

  it('fails when duplicates pass the bound: first deliveries in the fault window plus what can be in flight', () => {
    const { publishes, plain, ordered } = soundHistory();
    // Bound 12: 10 messages first delivered within 9,000–14,300, and 2 in flight. 13 duplicates, well after it.
    for (let i = 0; i < 13; i++) plain.push({ id: `t.${i % 20}-0`, at: 20_000 + i });
    const verdict = check(publishes, plain, ordered);
    expect(verdict.publishers.plain?.duplicates).to.equal(13);
    expect(verdict.publishers.plain?.bound).to.equal(12);
    expect(verdict.problems).to.deep.equal([
      'plain: 13 duplicates, above the bound 12 (10 first delivered in the fault window + 2 in flight)',
    ]);
    plain.pop();
    expect(check(publishes, plain, ordered).problems).to.deep.equal([]);
  });

  it('fails when nothing sent after the fault ended reached every publisher (no recovery)', () => {
    const { publishes, plain, ordered } = soundHistory();
    const verdict = check(
      publishes,
      plain,
      ordered.filter((d) => d.at < 12_000),
    );
    expect(verdict.recoveredAt).to.equal(Infinity);
    expect(verdict.problems[0]).to.equal('no message sent after the fault ended reached every publisher');
  });
});
