import { defineConfig } from "tsup";
import { tsupDefaults } from "../../tsup.shared.js";

export default defineConfig({ ...tsupDefaults, entry: ["src/bin.ts", "src/main.ts"], dts: { entry: "src/main.ts" } });
