import { defineConfig } from "vitest/config";

/** The one vitest configuration every package uses. */
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // VM tests boot real guests; on the project's own machines a boot takes
    // tens of seconds (see shared/design/kvm-here.md).
    testTimeout: 10 * 60_000,
    hookTimeout: 10 * 60_000,
    fileParallelism: false,
    // tools/test sums these files into its closing "N passed, M failed" line.
    reporters: ["default", "json"],
    outputFile: { json: "test-results.json" },
  },
});
