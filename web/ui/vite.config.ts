import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// The build lands in web/dist/ui, which web/web.go embeds; /api and /spoor/api are
// proxied in `npm run dev` to a Spoor on SPOOR_QUERY_ENDPOINT (default localhost:16686).
const target = 'http://' + (process.env.SPOOR_QUERY_ENDPOINT || 'localhost:16686');

export default defineConfig({
  plugins: [preact()],
  base: '/',
  build: {
    outDir: '../dist/ui',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: { proxy: { '/api': target, '/spoor/api': target, '/healthz': target } },
  test: { include: ['test/**/*.test.ts'], environment: 'node' },
});
