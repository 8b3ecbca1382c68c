// Prints the console's raw and gzipped size (every script and style sheet the page loads,
// added up) and fails the build above the budget: it must load fast on a phone too.
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const ASSETS = new URL('../dist/assets/', import.meta.url);
const BUDGET_BYTES = 150 * 1024;

let raw = 0;
let gzipped = 0;
for (const name of readdirSync(ASSETS)) {
  if (!/\.(js|css)$/.test(name)) continue;
  const body = readFileSync(new URL(name, ASSETS));
  const packed = gzipSync(body, { level: 9 }).length;
  raw += body.length;
  gzipped += packed;
  console.log(`  ${name}: ${body.length} bytes, gzip ${packed} bytes`);
}
const kib = (bytes) => (bytes / 1024).toFixed(1);
console.log(`console bundle: ${raw} bytes (${kib(raw)} kB), gzip ${gzipped} bytes (${kib(gzipped)} kB); budget ${kib(BUDGET_BYTES)} kB gz`);
if (gzipped > BUDGET_BYTES) {
  console.error(`bundle too large: ${gzipped} bytes gzipped > ${BUDGET_BYTES}`);
  process.exit(1);
}
