#!/usr/bin/env node
import { main } from "./main.js";

// Broken pipes on our own stdout (e.g. `stasis boot … | head`) are not errors.
process.stdout.on("error", () => {});
process.stderr.on("error", () => {});

/** Grace for work still finishing after main() returns (e.g. a foreground VM's cleanup). */
const EXIT_GRACE_MS = 1000;

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Normally the event loop empties and we exit at once. Something left open
  // (stdin after a session, a socket of a detached VM's handle) must not keep
  // the CLI alive; an unref'd timer fires only in that case.
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
});
