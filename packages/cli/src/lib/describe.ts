/** `1234 (name)`, or just `1234` for an unnamed VM. */
export function describeVm(vm: { pid: number; name?: string }): string {
  return vm.name === undefined ? String(vm.pid) : `${vm.pid} (${vm.name})`;
}
