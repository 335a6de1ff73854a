import type { Options } from "tsup";

/** Build settings shared by the TypeScript packages: ESM + .d.ts for Node 20. */
export const tsupDefaults: Options = {
  format: ["esm"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node20",
};
