// Day-by-day charts with uPlot (small, canvas-based). Each chart is a <figure> with a caption
// and a text summary of its last values, so the numbers are readable without the canvas.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h } from './dom';

export interface Series {
  label: string;
  values: (number | null)[];
}

const COLOURS = ['#2563eb', '#d97706', '#059669', '#dc2626', '#7c3aed', '#0891b2'];

/** Days (ISO dates) → unix seconds, uPlot's x axis. */
export function dayToSeconds(day: string): number {
  return Date.parse(`${day}T00:00:00Z`) / 1000;
}

/** "12-05" (month-day, UTC) for an axis tick. */
function dayLabel(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(5, 10);
}

/** Aligns rows keyed by day and series onto one sorted day axis (missing → null). */
export function alignByDay<T>(
  rows: T[],
  day: (row: T) => string,
  seriesOf: (row: T) => string,
  value: (row: T) => number | null,
): { days: string[]; series: Series[] } {
  const days = [...new Set(rows.map(day))].sort();
  const names = [...new Set(rows.map(seriesOf))].sort();
  const index = new Map(days.map((d, i) => [d, i]));
  const series = names.map((label) => ({ label, values: days.map((): number | null => null) }));
  for (const row of rows) {
    const target = series[names.indexOf(seriesOf(row))];
    const at = index.get(day(row))!;
    const current = target.values[at];
    const next = value(row);
    target.values[at] = next === null ? current : (current ?? 0) + next;
  }
  return { days, series };
}

function widthOf(container: HTMLElement): number {
  return Math.max(260, Math.min(container.clientWidth || 560, 900) - 16);
}

/** A line chart over days; `format` renders a value for the axis and the summary. */
export function lineChart(
  title: string,
  days: string[],
  series: Series[],
  format: (value: number) => string = (value) => String(value),
  yRange?: [number, number],
): HTMLElement {
  const summary = series
    .map((s) => {
      const last = [...s.values].reverse().find((value) => value !== null);
      return `${s.label}: ${last === undefined || last === null ? '—' : format(last)}`;
    })
    .join(' · ');
  const plotHost = h('div', { class: 'plot', 'aria-hidden': 'true' });
  const figure = h(
    'figure',
    { class: 'chart', 'data-chart': title, 'data-points': days.length },
    h('figcaption', {}, title),
    plotHost,
    h('p', { class: 'chart-summary' }, days.length ? summary : '—'),
  );
  if (!days.length) return figure;
  const xs = days.map(dayToSeconds);
  const data: uPlot.AlignedData = [xs, ...series.map((s) => s.values)];
  // One day alone: show the day before and after, not uPlot's default years-wide range.
  const DAY = 86_400;
  const xRange: uPlot.Range.MinMax | undefined = xs.length === 1 ? [xs[0] - DAY, xs[0] + DAY] : undefined;
  // uPlot measures its container, so it is created once the figure is in the page.
  requestAnimationFrame(() => {
    const plot = new uPlot(
      {
        width: widthOf(figure),
        height: 180,
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: COLOURS[i % COLOURS.length],
            width: 2,
            points: { show: days.length < 3 },
            value: (_u: uPlot, v: number | null) => (v === null ? '—' : format(v)),
          })),
        ],
        axes: [
          // Whole days only: the data is daily.
          { incrs: [DAY, 7 * DAY, 30 * DAY], values: (_u: uPlot, ticks: number[]) => ticks.map(dayLabel) },
          { values: (_u: uPlot, ticks: number[]) => ticks.map(format), size: 72 },
        ],
        scales: {
          x: xRange ? { time: true, range: () => xRange } : { time: true },
          ...(yRange ? { y: { range: () => yRange } } : {}),
        },
        legend: { show: true, live: false },
      },
      data,
      plotHost,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: widthOf(figure), height: 180 }));
    resize.observe(figure);
  });
  return figure;
}

/** Horizontal bars for a few named counts (feedback reasons, triage fields): plain HTML. */
export function barList(title: string, counts: Record<string, number>, format = (v: number) => String(v)): HTMLElement {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const top = Math.max(1, ...entries.map(([, value]) => value));
  return h(
    'figure',
    { class: 'chart bars', 'data-chart': title, 'data-points': entries.length },
    h('figcaption', {}, title),
    entries.length
      ? h(
          'ul',
          {},
          entries.map(([name, value]) =>
            h(
              'li',
              {},
              h('span', { class: 'bar-label' }, name),
              h('span', { class: 'bar', style: `width:${Math.round((value / top) * 100)}%` }),
              h('span', { class: 'bar-value' }, format(value)),
            ),
          ),
        )
      : h('p', { class: 'chart-summary' }, '—'),
  );
}
