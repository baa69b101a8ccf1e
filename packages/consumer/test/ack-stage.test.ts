import { expect } from 'chai';
import { attemptJson } from '../src/pipeline/ack-stage.js';
import type { AttemptResult } from '../src/types.js';

describe('attemptJson', () => {
  const cases: AttemptResult[] = [
    { ok: true, status: 200, startedAt: 1_700_000_000_123, durationMs: 4 },
    { ok: false, status: 503, error: 'HTTP 503', startedAt: 1_700_000_000_000, durationMs: 12 },
    { ok: false, error: 'timeout after 0.2 s', startedAt: 1_700_000_000_000, durationMs: 200 },
    { ok: false, error: 'quote " and \\ backslash\n', startedAt: 0, durationMs: 0.5 },
    { ok: false, startedAt: 1, durationMs: 1 },
  ];

  it('writes the same history attempt as JSON.stringify of the record', () => {
    for (const result of cases) {
      const expected = {
        at: new Date(result.startedAt).toISOString(),
        ...(result.status !== undefined ? { status: result.status } : {}),
        ...(result.ok ? {} : { error: result.error ?? 'failed' }),
        duration_ms: result.durationMs,
      };
      expect(attemptJson(result)).to.equal(JSON.stringify(expected));
    }
  });
});
