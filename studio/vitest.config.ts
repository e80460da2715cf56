import { defineConfig } from 'vitest/config';

// Unit tests: the pure helpers, and the session and client against a stubbed fetch (no DOM).
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
