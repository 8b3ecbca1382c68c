// One self-registering IIFE file (dist/helpdesk-widget.js) that any helpdesk page can load
// with a plain <script> tag; scripts/check-size.mjs then prints and enforces its gzipped size.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  build: {
    lib: {
      entry: 'src/index.ts',
      name: 'HelpdeskWidget',
      formats: ['iife'],
      fileName: () => 'helpdesk-widget.js',
    },
    target: 'es2020',
    sourcemap: false,
    emptyOutDir: true,
    // public/ (the example host page) is copied next to the bundle and served under /widget/.
    copyPublicDir: true,
  },
  test: {
    environment: 'happy-dom',
    include: ['test/**/*.test.ts'],
  },
});
