import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real servers on loopback; two cores do not gain from more workers.
    maxWorkers: 2,
    // The test Kubernetes control plane: started on first use, stopped when the run ends.
    globalSetup: ['test/setup/cluster.ts'],
  },
});
