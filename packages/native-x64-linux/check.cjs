"use strict";
// Fails when an exported file is missing: a package without its binaries is broken.
const fs = require("node:fs");
const paths = require("./index.cjs");

const missing = Object.entries(paths).filter(([, p]) => !fs.existsSync(p));
if (missing.length > 0) {
  for (const [name, p] of missing) console.error(`@stasis/native-x64-linux: missing ${name}: ${p}`);
  console.error("build the native binaries with: bash tools/setup");
  process.exit(1);
}
console.log(`@stasis/native-x64-linux: ${Object.keys(paths).length} files present`);
