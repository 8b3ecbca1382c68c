import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOGUES, setLanguage, t } from '../src/i18n';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('catalogues', () => {
  it('English and Korean have the same keys, none empty', () => {
    expect(Object.keys(CATALOGUES.ko).sort()).toEqual(Object.keys(CATALOGUES.en).sort());
    for (const catalogue of Object.values(CATALOGUES)) {
      for (const value of Object.values(catalogue)) expect(value.trim()).not.toBe('');
    }
  });

  it('every literal key the pages use is in the catalogue', () => {
    const used = new Set<string>();
    for (const file of sources(join(__dirname, '..', 'src'))) {
      for (const match of readFileSync(file, 'utf8').matchAll(/\bt\('([a-zA-Z]+\.[\w.-]+)'/g)) used.add(match[1]);
    }
    expect(used.size).toBeGreaterThan(100);
    const missing = [...used].filter((key) => !(key in CATALOGUES.en));
    expect(missing).toEqual([]);
  });

  it('placeholders are the same in both languages', () => {
    const names = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const [key, text] of Object.entries(CATALOGUES.en)) expect(names(CATALOGUES.ko[key]), key).toEqual(names(text));
  });

  it('fills placeholders and switches language', () => {
    setLanguage('en');
    expect(t('insight.lastDays', { days: 7 })).toBe('Last 7 days');
    setLanguage('ko');
    expect(t('insight.lastDays', { days: 7 })).toBe('최근 7일');
    expect(t('nav.connectors')).toBe('플랫폼 연결');
    setLanguage('xx');
    expect(t('nav.connectors')).toBe('플랫폼 연결');
    setLanguage('en');
    expect(t('no.such.key')).toBe('no.such.key');
  });
});
