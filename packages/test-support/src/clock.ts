/**
 * Test support: a clock that stands still until the test moves it forward,
 * for code that takes a `now` (the producer's `buildServer({ now })`):
 * what comes due after a time is checked by moving the clock past it, not
 * by sleeping.
 *
 * Times Redis gives (stream ids, `TIME`) go on in real time meanwhile: a
 * message received after the clock was made is younger by the test's own
 * running time, so a test comparing the two moves the clock by clearly more
 * than the age it wants. A long poll (`wait_seconds`) ends on this clock:
 * it waits until the clock is moved past its end.
 */
export interface TestClock {
  /** Milliseconds since the epoch: the time the clock was made, plus every `advance` so far. */
  readonly now: () => number;
  /** Moves the clock `ms` forward. */
  advance(ms: number): void;
}

export function testClock(start = Date.now()): TestClock {
  let at = start;
  return {
    now: () => at,
    advance(ms) {
      at += ms;
    },
  };
}
