// The console is a small single-page app served by the API at /console/ (static files from
// dist/); scripts/check-size.mjs then prints and enforces its gzipped size.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  base: '/console/',
  build: {
    target: 'es2020',
    sourcemap: false,
    emptyOutDir: true,
    // Asset names carry a content hash, so the API may cache them for long; index.html not.
    assetsDir: 'assets',
  },
  test: {
    environment: 'happy-dom',
    include: ['test/**/*.test.ts'],
  },
});
