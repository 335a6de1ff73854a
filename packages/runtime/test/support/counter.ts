/**
 * The snapshot tests' guest workload (issue 4): one shell process holds a
 * counter in a variable and answers "bump" requests over FIFOs with
 * "<n> <its pid>"; beside it run a timer (a sleep loop), a background
 * pipeline (two processes joined by a pipe) and an open file descriptor.
 * Every one of them is in-guest state a restore must bring back intact.
 * The timers wait with the shell's own `read -t` on a FIFO nobody writes:
 * spawning `sleep` every second costs a guest about half a core here
 * (process creation runs emulated), and the tests run several VMs at once.
 * They tick every TICK_SECONDS, not every second: even without processes a
 * wake-up costs the guest tens of ms of emulated kernel, and one tick a
 * second each kept an otherwise idle counter VM at 20% of a core — five of
 * them (a source and four forks) starved each other and the other test
 * files into timeouts.
 * Both timers append a line per tick, so a reader counting lines never sees
 * the empty file a truncating rewrite leaves for an instant.
 * "quit <status>" ends the workload with that status.
 */
/** Seconds between two ticks of the workload's timers. */
export const TICK_SECONDS = 3;

export const COUNTER_SCRIPT = `
mkfifo /tmp/req /tmp/resp /tmp/never
exec 3>>/tmp/open-file.log
( while :; do echo tick >> /tmp/ticks; read -t ${TICK_SECONDS} x <> /tmp/never; done ) &
echo $! > /tmp/timer.pid
( while :; do echo tick; read -t ${TICK_SECONDS} x <> /tmp/never; done ) | ( while read l; do echo "$l" >> /tmp/piped; done ) &
echo $! > /tmp/pipe.pid
echo $$ > /tmp/counter.pid
n=0
while :; do
  read cmd < /tmp/req
  case "$cmd" in quit*) exit \${cmd#quit } ;; esac
  n=$((n+1))
  echo "bump $n" >&3
  echo "$n $$" > /tmp/resp
done
`;

export const COUNTER_CMD = ["/bin/sh", "-c", COUNTER_SCRIPT];

/** Guest command: one bump, once the workload is up. Prints "<n> <pid>". */
export const BUMP = "until [ -s /tmp/counter.pid ]; do sleep 1; done; echo bump > /tmp/req; cat /tmp/resp";

/** Guest command: end the workload with `status`. */
export const quit = (status: number): string => `echo "quit ${status}" > /tmp/req`;

export function parseBump(stdout: string): { n: number; pid: number } {
  const m = /^(\d+) (\d+)\n$/.exec(stdout);
  if (!m) throw new Error(`not a bump reply: ${JSON.stringify(stdout)}`);
  return { n: Number(m[1]), pid: Number(m[2]) };
}

/**
 * Guest wall clock, ns since the epoch: `date +%s%N` where date knows %N,
 * else busybox adjtimex's seconds + microseconds.
 */
export const GUEST_TIME =
  "d=$(date +%s%N); case \"$d\" in *[!0-9]*) adjtimex | sed -n -e 's/^ *time\\.tv_sec: *//p' -e 's/^ *time\\.tv_usec: *//p' | tr '\\n' ' ';; *) echo \"ns $d\";; esac";

export function parseGuestTimeNs(stdout: string): bigint {
  const s = stdout.trim();
  if (s.startsWith("ns ")) return BigInt(s.slice(3));
  const [sec, usec] = s.split(/\s+/);
  if (!sec || !usec) throw new Error(`no guest time in ${JSON.stringify(stdout)}`);
  return BigInt(sec) * 1_000_000_000n + BigInt(usec) * 1_000n;
}
