import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Served by `switchyard serve` at /studio/ (same origin as the API). `npm run dev` proxies the
// API to a server on 127.0.0.1:8080 (`make demo`).
export default defineConfig({
  base: '/studio/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    // No inline script anywhere: the server's CSP forbids them.
    assetsInlineLimit: 0,
    // ELK (the designer's automatic layout, a compiled Java library) is one 1.5 MB chunk, loaded
    // only when a workflow needs laying out; the initial JavaScript is the index chunk.
    chunkSizeWarningLimit: 1600,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
