import { describe, expect, it } from 'vitest';
import { alignByDay } from '../src/charts';
import { setLanguage } from '../src/i18n';
import { errorCount, progressFigures, type SyncRun } from '../src/pages/connectors';
import { comparisonTable, formatDelta, hitRateByDay, ratingByDay } from '../src/pages/insight';
import { orNull, parseList } from '../src/pages/settings';
import { assignableRoles } from '../src/pages/team';

describe('sync progress', () => {
  const run: SyncRun = {
    id: 'r1', connector_id: 'c1', status: 'running', trigger: 'manual', started_at: null, finished_at: null,
    fetched: 40, upserted: 38, failed: 1, deleted: 0, errors: [{ where: 'ticket 7' }],
    documents: 38, chunks: 120, chunks_per_second: 12.345, eta_seconds: 95,
  };
  it('shows documents, chunks/s, ETA and errors', () => {
    setLanguage('en');
    expect(Object.fromEntries(progressFigures(run))).toEqual({
      Status: 'running', Documents: '38', Chunks: '120', 'Chunks per second': '12.3', 'Time left': '1 min 35 s', Errors: '1',
    });
  });
  it('shows no ETA once finished, and unknown figures as a dash', () => {
    const done = { ...run, status: 'succeeded', eta_seconds: null, chunks: undefined, chunks_per_second: null, documents: undefined, errors: 0 };
    expect(Object.fromEntries(progressFigures(done))).toMatchObject({ 'Time left': '—', Chunks: '—', Documents: '38', Errors: '0' });
    expect(errorCount(done)).toBe(0);
  });
});

describe('insight figures', () => {
  it('aligns series by day and sums duplicates', () => {
    const rows = [
      { day: '2026-12-02', task: 'answer', calls: 3 },
      { day: '2026-12-01', task: 'draft_reply', calls: 2 },
      { day: '2026-12-02', task: 'answer', calls: 1 },
    ];
    const aligned = alignByDay(rows, (r) => r.day, (r) => r.task, (r) => r.calls);
    expect(aligned.days).toEqual(['2026-12-01', '2026-12-02']);
    expect(aligned.series).toEqual([
      { label: 'answer', values: [null, 4] },
      { label: 'draft_reply', values: [2, null] },
    ]);
  });
  it('computes the cache hit rate over tasks and the weighted rating', () => {
    const hits = hitRateByDay([
      { day: 'd1', task: 'a', calls: 4, cache_hits: 1, latency_p50_ms: 1, latency_p95_ms: 2 },
      { day: 'd1', task: 'b', calls: 4, cache_hits: 3, latency_p50_ms: 1, latency_p95_ms: 2 },
      { day: 'd2', task: 'a', calls: 0, cache_hits: 0, latency_p50_ms: null, latency_p95_ms: null },
    ]);
    expect(hits).toEqual({ days: ['d1', 'd2'], values: [0.5, null] });
    const rating = ratingByDay([
      { day: 'd1', platform: 'google', reviews: 3, average_rating: 5, positive: 3, neutral: 0, negative: 0 },
      { day: 'd1', platform: 'trustpilot', reviews: 1, average_rating: 1, positive: 0, neutral: 0, negative: 1 },
    ]);
    expect(rating.values).toEqual([4]);
  });
});

describe('settings and roles', () => {
  it('parses lists, sending an empty one as null', () => {
    expect(parseList('en, ko\n ja ,')).toEqual(['en', 'ko', 'ja']);
    expect(orNull(parseList(' , '))).toBeNull();
    expect(orNull(['en'])).toEqual(['en']);
  });
  it('lets an admin hand out every role but owner', () => {
    expect(assignableRoles('owner')).toEqual(['owner', 'admin', 'agent']);
    expect(assignableRoles('admin')).toEqual(['admin', 'agent']);
    expect(assignableRoles('agent')).toEqual([]);
  });
});

describe('evaluation comparison', () => {
  it('signs deltas and flags regressions of the latest run', () => {
    setLanguage('en');
    expect(formatDelta(0.1)).toBe('+0.1');
    expect(formatDelta(-0.05)).toBe('-0.05');
    const table = comparisonTable({
      base: 'r1', candidate: 'r2', tolerance: 0.02, regressions: ['answer_f1'],
      deltas: { retrieval_hit_rate: 0.1, answer_f1: -0.05 },
    });
    expect(table.querySelector('caption')?.textContent).toBe('r2 minus r1');
    const rows = [...table.querySelectorAll('tbody tr')].map((row) => row.textContent);
    expect(rows).toEqual(['retrieval_hit_rate+0.1', 'answer_f1-0.05 regressed']);
  });
});
