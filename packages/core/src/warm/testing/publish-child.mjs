// One side of the publish race (race.test.ts). Fills every key given with a
// bundle tagged with this process's tag, prints "ready", waits until the go
// file exists, then publishes them all as fast as it can and prints the
// outcomes as one JSON line ({ key: outcome }). Keys are published in the
// order given: two children given opposite orders meet in the middle.
// Env: STASIS_WARM_DIR; argv: tag, go file, inputs JSON, keys…
import { existsSync } from "node:fs";
import { makeBundle } from "./fixtures.ts";
import { fillPath, publishWarm } from "../index.ts";

const [tag, goFile, inputsJson, ...keys] = process.argv.slice(2);
const inputs = JSON.parse(inputsJson);
const fills = keys.map((key) => makeBundle(fillPath(key), { tag, memoryData: 4096 }));
process.stdout.write("ready\n");
const nap = new Int32Array(new SharedArrayBuffer(4));
while (!existsSync(goFile)) Atomics.wait(nap, 0, 0, 1);
const outcomes = Object.fromEntries(keys.map((key, i) => [key, publishWarm(key, fills[i], inputs)]));
process.stdout.write(`${JSON.stringify({ pid: process.pid, tag, outcomes })}\n`);
