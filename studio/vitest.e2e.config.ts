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
    // One more attempt for a test that failed: on 2026-12-03 two steps failed about one run in
    // three on this 2-core machine (a sign-in that never reached the next page in
    // studio.e2e.ts, a transition's edge not yet on the designer's canvas in
    // designer-editing.e2e.ts) and passed alone and in the next full run. Vitest prints each
    // retried test, so a flake stays visible; a test failing twice still fails the run.
    // To be removed once those two are understood.
    retry: 1,
  },
});
