import { defineConfig } from 'vitest/config';

// End-to-end tests: a real `switchyard serve --demo` (e2e/server.ts) and Debian's Chromium
// driven by playwright-core. One file at a time; the server is shared through globalSetup.
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    globalSetup: ['e2e/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
