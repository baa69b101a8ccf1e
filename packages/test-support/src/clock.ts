/**
 * Test support: a clock that stands still until the test moves it forward,
 * for code that takes a `now` (the producer's `buildServer({ now })`):
 * what comes due after a time is checked by moving the clock past it, not
 * by sleeping.
 *
 * Times Redis gives (stream ids, `TIME`) go on in real time meanwhile: a
 * message received after the clock was made is younger by the test's own
 * running time (and by its hooks': starting a Redis Cluster takes seconds),
 * so a test comparing the two moves the clock from the real time
 * (`advanceTo(Date.now() + age)`), not from where it stood. A long poll (`wait_seconds`) ends on this clock:
 * it waits until the clock is moved past its end.
 */
export interface TestClock {
  /** Milliseconds since the epoch: the time the clock was made, plus every `advance` so far. */
  readonly now: () => number;
  /** Moves the clock `ms` forward. */
  advance(ms: number): void;
  /** Moves the clock to `ms` since the epoch if that is later (it never goes back). */
  advanceTo(ms: number): void;
}

export function testClock(start = Date.now()): TestClock {
  let at = start;
  return {
    now: () => at,
    advance(ms) {
      at += ms;
    },
    advanceTo(ms) {
      at = Math.max(at, ms);
    },
  };
}
