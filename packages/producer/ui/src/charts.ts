/**
 * Charts of `GET /api/stats/series`: messages received, delivered and
 * failed attempts per minute (last hour) or per ten minutes (last day), and
 * the sampled backlog with the oldest waiting message's age. Drawn with
 * uPlot (a canvas; the package ships it under /ui/js/vendor/, no CDN), which
 * sets its element styles through CSSOM, allowed by the page's CSP.
 *
 * `mountSeriesChart(container, query)` is what a page uses: the dashboard
 * for everything, a publisher's page with `{ publisher }`, a topic's with
 * `{ topic }`. Under each chart a line of text says the window's totals, for
 * readers who do not see the canvas.
 */
import uPlot from './vendor/uPlot.esm.js';
import { api, type Series } from './api.js';
import { duration, h, num, replace } from './dom.js';

export interface SeriesQuery {
  readonly publisher?: string;
  readonly topic?: string;
}

export type SeriesWindow = 'hour' | 'day';

export interface SeriesChart {
  /** The element holding the toggle and both charts. */
  readonly element: HTMLElement;
  /** Fetches the current window again and redraws. */
  refresh(): Promise<void>;
  /** Shows another window (fetches it). */
  show(window: SeriesWindow): Promise<void>;
  /** Stops following the container's size. */
  destroy(): void;
}

const HEIGHT = 200;
const COLOURS = {
  received: '#4f46e5',
  delivered: '#067647',
  failed: '#b42318',
  backlog: '#175cd3',
  age: '#b54708',
};

function path(query: SeriesQuery, window: SeriesWindow): string {
  const params = new URLSearchParams({ window });
  if (query.topic !== undefined) params.set('topic', query.topic);
  if (query.publisher !== undefined) params.set('publisher', query.publisher);
  return `/api/stats/series?${params.toString()}`;
}

/** An age axis tick: "0", "40 s", "2 min", "1.5 h". */
function ageTick(seconds: number): string {
  if (seconds === 0) return '0';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Number((seconds / 60).toFixed(1))} min`;
  if (seconds < 86400) return `${Number((seconds / 3600).toFixed(1))} h`;
  return `${Number((seconds / 86400).toFixed(1))} d`;
}

function width(el: HTMLElement): number {
  return Math.max(200, Math.floor(el.clientWidth));
}

function countsOptions(w: number, bucket: string): uPlot.Options {
  return {
    width: w,
    height: HEIGHT,
    legend: { live: false },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { size: 50, values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? num(t) : '')) }],
    series: [
      {},
      { label: `Received (messages/${bucket})`, stroke: COLOURS.received, width: 2 },
      { label: `Delivered (deliveries/${bucket})`, stroke: COLOURS.delivered, width: 2 },
      { label: `Failed attempts/${bucket}`, stroke: COLOURS.failed, width: 2 },
    ],
  };
}

/** One line of the backlog chart: a total, or one publisher's. */
interface BacklogLine {
  readonly label: string;
  readonly kind: 'backlog' | 'age';
  readonly colour: string;
  readonly dash?: number[];
}

/** Colours of the publishers' lines (backlog solid, oldest age dashed in the same colour). */
const PALETTE = ['#175cd3', '#b54708', '#6941c6', '#107569', '#c11574', '#475467', '#4f46e5', '#067647'];

/** Per publisher lines while there are at most this many publishers; totals beyond. */
export const MAX_PUBLISHER_LINES = 8;

function backlogLines(series: Series, perPublisher: boolean): { lines: BacklogLine[]; data: (number | null)[][] } {
  if (perPublisher && series.publishers.length > 0 && series.publishers.length <= MAX_PUBLISHER_LINES) {
    const lines: BacklogLine[] = [];
    const data: (number | null)[][] = [];
    series.publishers.forEach((p, i) => {
      const colour = PALETTE[i % PALETTE.length]!;
      lines.push({ label: `#${p.id} backlog`, kind: 'backlog', colour });
      data.push(p.points.map((pt) => pt.backlog));
      lines.push({ label: `#${p.id} oldest waiting`, kind: 'age', colour, dash: [5, 4] });
      data.push(p.points.map((pt) => pt.oldest_age_seconds));
    });
    return { lines, data };
  }
  return {
    lines: [
      { label: 'Backlog (deliveries)', kind: 'backlog', colour: COLOURS.backlog },
      { label: 'Oldest waiting', kind: 'age', colour: COLOURS.age },
    ],
    data: [series.points.map((p) => p.backlog), series.points.map((p) => p.oldest_age_seconds)],
  };
}

function backlogOptions(w: number, lines: readonly BacklogLine[]): uPlot.Options {
  return {
    width: w,
    height: HEIGHT,
    legend: { live: false },
    scales: {
      x: { time: true },
      y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
      // At least a minute, so that the ticks are whole seconds.
      age: { range: (_u, _min, max) => [0, Math.max(60, max)] },
    },
    axes: [
      {},
      { size: 50, values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? num(t) : '')) },
      {
        scale: 'age',
        side: 1,
        size: 70,
        values: (_u, ticks) => ticks.map(ageTick),
        grid: { show: false },
      },
    ],
    series: [
      {},
      // Samples may be sparse (no node running for a while): each one shows as a point.
      ...lines.map((l) => ({
        label: l.label,
        stroke: l.colour,
        width: 2,
        ...(l.kind === 'age' ? { scale: 'age' } : {}),
        ...(l.dash ? { dash: l.dash } : {}),
        points: { show: true, size: 5 },
      })),
    ],
  };
}

/** The charts change once a minute: a page looks again every 20 s. */
export const SERIES_REFRESH_MS = 20_000;

export interface SeriesChartOptions {
  /**
   * Draw each publisher's backlog and oldest age (up to `MAX_PUBLISHER_LINES`
   * publishers; totals beyond). Default true.
   */
  readonly perPublisher?: boolean;
}

/** Draws the charts of `query` into `container` (replacing its content) and loads the last hour. */
export function mountSeriesChart(
  container: HTMLElement,
  query: SeriesQuery,
  options: SeriesChartOptions = {},
): SeriesChart {
  const perPublisher = options.perPublisher ?? true;
  let window: SeriesWindow = 'hour';
  let drawnLines = '';
  let counts: uPlot | undefined;
  let backlog: uPlot | undefined;
  let drawnWindow: SeriesWindow | undefined;

  const buttons = (['hour', 'day'] as const).map((w) =>
    h(
      'button',
      {
        type: 'button',
        class: 'btn btn-small',
        'data-window': w,
        'aria-pressed': w === window ? 'true' : 'false',
        on: { click: () => void show(w).catch(() => undefined) },
      },
      w === 'hour' ? 'Last hour' : 'Last day',
    ),
  );
  const countsBox = h('div', { class: 'chart', 'data-chart': 'counts' });
  const countsSummary = h('p', { class: 'chart-summary', 'data-summary': 'counts', 'aria-live': 'polite' });
  const backlogBox = h('div', { class: 'chart', 'data-chart': 'backlog' });
  const backlogSummary = h('p', { class: 'chart-summary', 'data-summary': 'backlog' });
  const countsTitle = h('h3', null, 'Messages per minute');
  const element = h(
    'div',
    { class: 'series-charts' },
    h('div', { class: 'chart-toolbar', role: 'group', 'aria-label': 'Time window' }, buttons),
    h('div', { class: 'chart-panel' }, countsTitle, countsBox, countsSummary),
    h('div', { class: 'chart-panel' }, h('h3', null, 'Backlog and oldest waiting'), backlogBox, backlogSummary),
  );
  replace(container, element);

  const resize = new ResizeObserver(() => {
    if (!element.isConnected) {
      resize.disconnect();
      return;
    }
    counts?.setSize({ width: width(countsBox), height: HEIGHT });
    backlog?.setSize({ width: width(backlogBox), height: HEIGHT });
  });
  resize.observe(element);

  function draw(series: Series): void {
    const bucket = series.bucket_seconds === 60 ? 'min' : `${series.bucket_seconds / 60} min`;
    const xs = series.points.map((p) => Date.parse(p.at) / 1000);
    const countData: uPlot.AlignedData = [
      xs,
      series.points.map((p) => p.received),
      series.points.map((p) => p.delivered),
      series.points.map((p) => p.failed),
    ];
    const { lines, data } = backlogLines(series, perPublisher);
    const backlogData: uPlot.AlignedData = [xs, ...data];
    const lineKey = lines.map((l) => l.label).join('\n');
    if (drawnWindow !== series.window || !counts) {
      counts?.destroy();
      countsBox.replaceChildren();
      counts = new uPlot(countsOptions(width(countsBox), bucket), countData, countsBox);
      drawnWindow = series.window;
    } else {
      counts.setData(countData);
    }
    // Drawn anew when its lines change (a publisher added or deleted), else only its data.
    if (!backlog || lineKey !== drawnLines) {
      backlog?.destroy();
      backlogBox.replaceChildren();
      backlog = new uPlot(backlogOptions(width(backlogBox), lines), backlogData, backlogBox);
      drawnLines = lineKey;
    } else {
      backlog.setData(backlogData);
    }
    replace(countsTitle, series.window === 'hour' ? 'Messages per minute' : 'Messages per 10 minutes');
    const sum = (f: 'received' | 'delivered' | 'failed'): number => series.points.reduce((n, p) => n + p[f], 0);
    const span = series.window === 'hour' ? 'Last hour' : 'Last day';
    replace(
      countsSummary,
      `${span}: ${num(sum('received'))} messages received, ${num(sum('delivered'))} delivered, ` +
        `${num(sum('failed'))} failed attempts.`,
    );
    const sampled = series.points.filter((p) => p.backlog !== null);
    const last = sampled[sampled.length - 1];
    replace(
      backlogSummary,
      sampled.length === 0
        ? `${span}: no backlog sample yet (a consumer node samples once a minute).`
        : `${span}: backlog at most ${num(Math.max(...sampled.map((p) => p.backlog ?? 0)))}, ` +
            `last sampled ${num(last?.backlog)}` +
            (last?.oldest_age_seconds ? ` with the oldest waiting ${duration(last.oldest_age_seconds)}.` : '.'),
    );
    element.dataset.window = series.window;
  }

  async function refresh(): Promise<void> {
    const asked = window;
    const answer = await api<{ data: Series }>('GET', path(query, asked));
    if (asked === window && element.isConnected) draw(answer.data);
  }

  async function show(next: SeriesWindow): Promise<void> {
    window = next;
    for (const b of buttons) b.setAttribute('aria-pressed', b.dataset.window === next ? 'true' : 'false');
    await refresh();
  }

  void refresh().catch(() => replace(countsSummary, 'The figures could not be loaded; trying again shortly.'));
  return {
    element,
    refresh,
    show,
    destroy: () => resize.disconnect(),
  };
}
