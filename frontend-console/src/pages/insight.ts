// Insight: day-by-day charts from /v1/analytics/*, knowledge gaps with their draft articles,
// triage accuracy and (where the API has them) evaluation runs. Each panel loads on its own,
// so one failing endpoint leaves the others readable.
import { ApiError, describeError, listOf } from '../api';
import { alignByDay, barList, lineChart } from '../charts';
import type { Context } from '../context';
import { field, h } from '../dom';
import { formatNumber, formatPercent, formatTime, formatUsd } from '../format';
import { t } from '../i18n';

interface TaskDay { day: string; task: string; calls: number; cache_hits: number; latency_p50_ms: number | null; latency_p95_ms: number | null }
interface ProviderDay { day: string; provider: string; calls: number; cost_usd: number }
interface Drafts { inserted: number; edited: number; discarded: number; reported: number; acceptance_rate: number | null }
interface FeedbackDay { day: string; up: number; down: number; reasons: Record<string, number>; drafts: Drafts }
interface ReviewDay { day: string; platform: string; reviews: number; average_rating: number | null; positive: number; neutral: number; negative: number }
interface Gap { id?: string; volume: number; trend: number; representative_questions: string[]; draft_article: { title: string; body: string; cites: string[] } }
interface FieldAccuracy { field: string; accepted: number; overridden: number; accuracy: number | null }
interface EvaluationRun { id?: string; run_id?: string; created_at?: string; metrics?: Record<string, number> }
interface EvaluationComparison { base: string; candidate: string; deltas: Record<string, number>; regressions: string[]; tolerance: number }

/** A metric delta with its sign, e.g. "+0.12" / "-0.05". */
export function formatDelta(delta: number): string {
  return `${delta > 0 ? '+' : ''}${formatNumber(delta, 3)}`;
}

/** The latest two runs compared (newest minus the one before), as `helpdesk eval compare`. */
export function comparisonTable(comparison: EvaluationComparison): HTMLElement {
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('caption', {}, t('insight.compareCaption', { base: comparison.base, candidate: comparison.candidate })),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('insight.metric')), h('th', { scope: 'col' }, t('insight.delta')))),
    h('tbody', {}, Object.entries(comparison.deltas).map(([metric, delta]) => h('tr', {},
      h('td', {}, metric),
      h('td', {}, formatDelta(delta), comparison.regressions.includes(metric) ? h('span', { class: 'tag', 'data-kind': 'error' }, ' ', t('insight.regression')) : '')))),
  ));
}

export const WINDOWS = [7, 30, 90];

/** Cache hit rate per day over every task: hits / calls. */
export function hitRateByDay(rows: TaskDay[]): { days: string[]; values: (number | null)[] } {
  const totals = new Map<string, { calls: number; hits: number }>();
  for (const row of rows) {
    const entry = totals.get(row.day) ?? { calls: 0, hits: 0 };
    entry.calls += row.calls;
    entry.hits += row.cache_hits;
    totals.set(row.day, entry);
  }
  const days = [...totals.keys()].sort();
  return { days, values: days.map((day) => { const e = totals.get(day)!; return e.calls ? e.hits / e.calls : null; }) };
}

/** Average rating per day over platforms, weighted by their review counts. */
export function ratingByDay(rows: ReviewDay[]): { days: string[]; values: (number | null)[] } {
  const totals = new Map<string, { sum: number; count: number }>();
  for (const row of rows) {
    const entry = totals.get(row.day) ?? { sum: 0, count: 0 };
    if (row.average_rating !== null) {
      entry.sum += row.average_rating * row.reviews;
      entry.count += row.reviews;
    }
    totals.set(row.day, entry);
  }
  const days = [...totals.keys()].sort();
  return { days, values: days.map((day) => { const e = totals.get(day)!; return e.count ? e.sum / e.count : null; }) };
}

function panel(title: string, id: string, body: Promise<HTMLElement[]>): HTMLElement {
  const section = h('section', { class: 'card', 'aria-labelledby': id, 'aria-busy': 'true' }, h('h2', { id }, title), h('p', { class: 'muted' }, t('app.loading')));
  body
    .then((children) => section.replaceChildren(h('h2', { id }, title), ...children))
    .catch((error) => section.replaceChildren(h('h2', { id }, title), h('p', { class: 'status', 'data-kind': 'error' }, describeError(error))))
    .finally(() => section.setAttribute('aria-busy', 'false'));
  return section;
}

export async function insightPage(ctx: Context): Promise<HTMLElement> {
  const { api } = ctx;
  const days = Number(sessionStorage.getItem('console.days') ?? 30);
  const windowSelect = h('select', { name: 'days' }, WINDOWS.map((d) => h('option', { value: d, selected: d === days }, t('insight.lastDays', { days: d }))));
  windowSelect.addEventListener('change', () => { sessionStorage.setItem('console.days', windowSelect.value); ctx.refresh(); });

  const usage = api.get<{ by_day: TaskDay[]; by_task: (TaskDay & { task: string })[]; by_provider: ProviderDay[] }>(`/v1/analytics/assistant?days=${days}`);
  const feedback = api.get<{ by_day: FeedbackDay[]; reasons: Record<string, number>; drafts: Drafts }>(`/v1/analytics/feedback?days=${days}`);
  const reviews = api.get<{ by_day: ReviewDay[] }>(`/v1/analytics/reviews?days=${days}`);

  const usagePanel = panel(t('insight.usage'), 'usage-title', usage.then((data) => {
    const calls = alignByDay(data.by_day, (r) => r.day, (r) => r.task, (r) => r.calls);
    const p95 = alignByDay(data.by_day, (r) => r.day, (r) => r.task, (r) => r.latency_p95_ms);
    const hits = hitRateByDay(data.by_day);
    const cost = alignByDay(data.by_provider, (r) => r.day, (r) => r.provider, (r) => r.cost_usd);
    const totalCalls = data.by_task.reduce((sum, row) => sum + row.calls, 0);
    const totalCost = data.by_provider.reduce((sum, row) => sum + row.cost_usd, 0);
    return [
      h('p', { class: 'kpis' }, h('span', {}, t('insight.totalCalls'), ' ', h('strong', { 'data-kpi': 'calls' }, formatNumber(totalCalls))), h('span', {}, t('insight.totalCost'), ' ', h('strong', { 'data-kpi': 'cost' }, formatUsd(totalCost)))),
      h('div', { class: 'charts' },
        lineChart(t('insight.calls'), calls.days, calls.series, (v) => formatNumber(v)),
        lineChart(t('insight.latency'), p95.days, p95.series, (v) => `${formatNumber(v)} ms`),
        lineChart(t('insight.cacheHitRate'), hits.days, [{ label: t('insight.cacheHitRate'), values: hits.values }], formatPercent, [0, 1]),
        lineChart(t('insight.cost'), cost.days, cost.series, formatUsd),
      ),
    ];
  }));

  const feedbackPanel = panel(t('insight.feedback'), 'feedback-title', feedback.then((data) => {
    const acceptance = data.by_day.map((day) => day.drafts.acceptance_rate);
    const votes = [
      { label: t('insight.up'), values: data.by_day.map((d) => d.up) },
      { label: t('insight.down'), values: data.by_day.map((d) => d.down) },
    ];
    const dayList = data.by_day.map((d) => d.day);
    return [
      h('p', { class: 'kpis' }, h('span', {}, t('insight.acceptance'), ' ', h('strong', { 'data-kpi': 'acceptance' }, formatPercent(data.drafts.acceptance_rate))), h('span', {}, t('insight.draftsReported'), ' ', h('strong', {}, formatNumber(data.drafts.reported)))),
      h('div', { class: 'charts' },
        barList(t('insight.reasons'), data.reasons),
        lineChart(t('insight.votes'), dayList, votes, (v) => formatNumber(v)),
        lineChart(t('insight.acceptanceTrend'), dayList, [{ label: t('insight.acceptance'), values: acceptance }], formatPercent, [0, 1]),
      ),
    ];
  }));

  const reviewPanel = panel(t('insight.reviews'), 'reviews-title', reviews.then((data) => {
    const rating = ratingByDay(data.by_day);
    const sentiment = ['positive', 'neutral', 'negative'].map((name) => {
      const aligned = alignByDay(data.by_day, (r) => r.day, () => name, (r) => r[name as 'positive' | 'neutral' | 'negative']);
      return { label: t(`insight.${name}`), values: aligned.series[0]?.values ?? [], days: aligned.days };
    });
    return [
      h('div', { class: 'charts' },
        lineChart(t('insight.rating'), rating.days, [{ label: t('insight.rating'), values: rating.values }], (v) => v.toFixed(1), [1, 5]),
        lineChart(t('insight.sentiment'), sentiment[0].days, sentiment, (v) => formatNumber(v)),
      ),
    ];
  }));

  const gapsPanel = panel(t('insight.gaps'), 'gaps-title', api.get<{ gaps: Gap[] }>(`/v1/insights/gaps?days=${days}&limit=10`).then((data) => [
    data.gaps.length
      ? h('ol', { class: 'gaps' }, data.gaps.map((gap) =>
          h('li', {},
            h('strong', {}, gap.draft_article.title), ' ',
            h('span', { class: 'tag' }, t('insight.gapVolume', { volume: gap.volume })),
            h('ul', {}, gap.representative_questions.slice(0, 3).map((q) => h('li', {}, q))),
            h('details', {}, h('summary', {}, t('insight.draftArticle')), h('pre', { class: 'article' }, gap.draft_article.body)),
          )))
      : h('p', {}, t('insight.noGaps')),
  ]));

  const triagePanel = panel(t('insight.triage'), 'triage-title', api.get<{ fields: FieldAccuracy[] }>(`/v1/triage/accuracy?days=${days}`).then((data) => [
    data.fields.length
      ? barList(t('insight.triageAccuracy'), Object.fromEntries(data.fields.map((f) => [f.field, f.accuracy ?? 0])), formatPercent)
      : h('p', {}, t('insight.noTriage')),
  ]));

  // Evaluation runs are shown only where the API lists them; the latest two are compared.
  const evaluationPanel = panel(t('insight.evaluation'), 'evaluation-title', api.get<unknown>('/v1/evaluation/runs').then(
    async (data) => {
      const runs = listOf<EvaluationRun>(data, 'runs');
      if (!runs.length) return [h('p', {}, t('insight.noRuns'))];
      const metrics = [...new Set(runs.flatMap((run) => Object.keys(run.metrics ?? {})))].slice(0, 6);
      const table = h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('insight.run')), h('th', { scope: 'col' }, t('insight.runDate')), metrics.map((m) => h('th', { scope: 'col' }, m)))),
        h('tbody', {}, runs.map((run) => h('tr', {}, h('td', {}, run.run_id ?? run.id ?? ''), h('td', {}, formatTime(run.created_at)), metrics.map((m) => h('td', {}, run.metrics?.[m] === undefined ? '—' : formatNumber(run.metrics[m], 3))))))));
      if (runs.length < 2) return [table];
      const comparison = await api.get<EvaluationComparison>('/v1/evaluation/compare').then(
        comparisonTable,
        (error: unknown) => h('p', { class: 'status', 'data-kind': 'error' }, describeError(error)),
      );
      return [table, h('h3', {}, t('insight.compareLatest')), comparison];
    },
    (error) => {
      if (error instanceof ApiError && error.status === 404) return [h('p', { class: 'muted' }, t('insight.noEvaluationApi'))];
      throw error;
    },
  ));

  return h(
    'div',
    { class: 'page' },
    h('div', { class: 'row spread' }, h('h1', {}, t('nav.insight')), field(t('insight.window'), windowSelect)),
    usagePanel,
    feedbackPanel,
    reviewPanel,
    gapsPanel,
    triagePanel,
    evaluationPanel,
  );
}
