#!/usr/bin/env node
import { main } from "./main.js";

// Broken pipes on our own stdout (e.g. `stasis boot … | head`) are not errors.
process.stdout.on("error", () => {});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
