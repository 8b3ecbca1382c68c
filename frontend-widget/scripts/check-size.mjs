// Prints the bundle's raw and gzipped size and fails the build above the budget: the widget
// loads inside every agent's helpdesk page, so it must stay small.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUNDLE = new URL('../dist/helpdesk-widget.js', import.meta.url);
const BUDGET_BYTES = 60 * 1024;

const raw = readFileSync(BUNDLE);
const gzipped = gzipSync(raw, { level: 9 }).length;
const kib = (bytes) => (bytes / 1024).toFixed(1);
console.log(`helpdesk-widget.js: ${raw.length} bytes (${kib(raw.length)} kB), gzip ${gzipped} bytes (${kib(gzipped)} kB); budget ${kib(BUDGET_BYTES)} kB gz`);
if (gzipped > BUDGET_BYTES) {
  console.error(`bundle too large: ${gzipped} bytes gzipped > ${BUDGET_BYTES}`);
  process.exit(1);
}
