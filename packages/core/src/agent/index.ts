/** Host-side client of the guest agent (docs/agent-protocol.md). */
export { AGENT_PORT } from "./bridge.js";
export {
  VsockExec,
  type VsockExecOptions,
  type VsockExecResult,
  type VsockExecPtyOptions,
  type VsockExecPtyHandle,
  type VsockExecPtyResult,
} from "./exec.js";
export { createExecApi, type ExecApi, type ExecExitError } from "./exec-api.js";
export { VsockFiles, type VsockFilesOptions } from "./files.js";
export { VsockSecrets, type VsockSecretsOptions } from "./secrets.js";
export { VsockWinsize, type VsockWinsizeOptions } from "./winsize.js";
export {
  writeFile,
  readFile,
  buildWriteFileCmd,
  buildWriteFileCmds,
  WRITE_FILE_B64_CHUNK_BYTES,
  type WriteFileOptions,
  type AgentCallOptions,
} from "./write-file.js";
export { pingAgent, thawGuest, type ThawRequest, type ThawReply } from "./thaw.js";
export { callAgentOp, type AgentOpOptions } from "./op-call.js";
export { startGuest, type GuestWorkload, type StartRequest } from "./start.js";
export { handOverGuest, hostClock, HANDOVER_SEED_BYTES, FIRST_PING_DEADLINE_MS, FIRST_PING_ATTEMPT_MS, type HandOver, type HostClock } from "./hand-over.js";
