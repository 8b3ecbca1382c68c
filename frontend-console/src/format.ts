import { getLanguage } from './i18n';

export function formatNumber(value: number, digits = 0): string {
  return new Intl.NumberFormat(getLanguage(), { maximumFractionDigits: digits }).format(value);
}

export function formatPercent(value: number | null | undefined): string {
  return value === null || value === undefined
    ? '—'
    : new Intl.NumberFormat(getLanguage(), { style: 'percent', maximumFractionDigits: 1 }).format(value);
}

export function formatUsd(value: number): string {
  return new Intl.NumberFormat(getLanguage(), { style: 'currency', currency: 'USD', maximumFractionDigits: 4 }).format(value);
}

export function formatTime(value: string | null | undefined): string {
  if (!value) return '—';
  return new Intl.DateTimeFormat(getLanguage(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(value));
}

/** Seconds as "1 h 5 min" / "42 s" (ETA of a sync). */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
