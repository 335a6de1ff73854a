/**
 * The agent's `start` op (docs/agent-protocol.md): the per-VM half of a
 * boot. /init brings the machine up and waits; this hands it the workload
 * together with what makes the VM its own (wall clock, entropy, hostname,
 * machine id). A cold boot sends it once the guest is idle; a warm boot
 * sends it to a restored copy of such an idle guest.
 */
import { BootError, ErrorCode } from "../errors/index.js";
import { callAgentOp, type AgentOpOptions } from "./op-call.js";
import { clockStepOf, guestStepsOf, type ThawReply, type ThawRequest } from "./thaw.js";

/** What the guest runs: already validated and merged with the image's config. */
export interface GuestWorkload {
  cmd: string[];
  env: Record<string, string>;
  cwd: string;
}

export interface StartRequest extends ThawRequest {
  workload: GuestWorkload;
  /** 32 lowercase hex digits, written to /etc/machine-id. */
  machineId?: string;
}

const workloadRefused = (op: string, f: { error: string; message: string }) =>
  new BootError(ErrorCode.BOOT_WORKLOAD_REFUSED, `the guest did not take its workload (${op}): ${f.error}: ${f.message}`);

/** Sends `start`; rejects with BOOT_WORKLOAD_REFUSED when the guest refuses it. */
export async function startGuest(udsPath: string, req: StartRequest, opts: AgentOpOptions = {}): Promise<ThawReply> {
  if (req.seed.length < 16 || req.seed.length > 512) throw new RangeError(`start seed must be 16..512 bytes, got ${req.seed.length}`);
  const request: Record<string, unknown> = {
    op: "start",
    realtimeNs: req.realtimeNs.toString(),
    seed: req.seed.toString("base64"),
    cmd: req.workload.cmd,
    env: req.workload.env,
    cwd: req.workload.cwd,
  };
  if (req.hostname !== undefined) request.hostname = req.hostname;
  if (req.machineId !== undefined) request.machineId = req.machineId;
  const exit = await callAgentOp(udsPath, "start", request, opts, workloadRefused);
  if (exit.code !== 0) throw new BootError(ErrorCode.BOOT_WORKLOAD_REFUSED, `the guest failed start (status ${exit.code})`);
  return { clockStepNs: clockStepOf(exit.info), guestSteps: guestStepsOf(exit.info) };
}
