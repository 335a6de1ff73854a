// Run by exec.e2e.test.ts in a separate Node process: attaches to a VM by
// name through the registry and execs in it (B28).
import { attach } from "@stasis/runtime";

const vm = await attach({ name: process.argv[2] });
const r = await vm.execRaw("echo from-child; echo to-stderr >&2; exit 5");
process.stdout.write(`${JSON.stringify({ pid: vm.pid, name: vm.name, ...r })}\n`);
