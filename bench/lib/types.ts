/** The bench harness's types: what a case is given and what it returns. */

/** full: the figures of record; quick: under two minutes; shape: the smallest run that exercises every path (the test). */
export type Mode = 'full' | 'quick' | 'shape';

/** One measured figure. */
export interface Measure {
  /** What ran: `postoffice`, `bare fastify`, `undici Pool`, ... */
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  /** Secondary figures of the same run (p99 latency, achieved rate, ...). */
  readonly extra?: Readonly<Record<string, number>>;
}

/** A figure beside one baseline. `ratio` is figure / baseline (for a goal-only case, the baseline is the goal). */
export interface Comparison {
  /** Set when this comparison is about another figure than the case's main one. */
  readonly figure?: Measure;
  readonly baseline: Measure;
  readonly ratio: number;
  /** The goal for the ratio or the figure, as text (`>= 0.8x`, `<= 25 ms`), and whether this run met it. */
  readonly goal: string;
  readonly met: boolean;
}

export interface CaseResult extends Comparison {
  readonly figure: Measure;
  /** Further baselines (delivery compares with two). */
  readonly more?: readonly Comparison[];
  /** Everything needed to run it again the same way: sizes, concurrency, durations, env. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Supporting series (RSS samples, sweeps); not compared. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface CaseContext {
  readonly mode: Mode;
  /** Results of the cases that ran before this one in the same run, by name. */
  readonly previous: ReadonlyMap<string, CaseResult>;
  /** Progress line on stderr. */
  log(message: string): void;
}

export interface BenchCase {
  readonly name: string;
  /** What the figure is, in a few words (the table's "measure" column). */
  readonly measure: string;
  run(ctx: CaseContext): Promise<CaseResult>;
}

/** Picks the size for the mode. */
export function bySize<T>(mode: Mode, sizes: { full: T; quick: T; shape: T }): T {
  return sizes[mode];
}
