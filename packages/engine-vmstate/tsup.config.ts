import { defineConfig } from "tsup";
import { tsupDefaults } from "../../tsup.shared.js";

export default defineConfig({ ...tsupDefaults, entry: ["src/index.ts"] });
