#!/usr/bin/env bash
# End-to-end checks of /init (and the agent) under QEMU (TCG: fast on the
# project's machines). Needs the guest kernel (tools/build-kernel),
# tools/build-guest and tools/build-base. QEMU has no vsock peer here, so the
# agent's protocol is checked in the guest over a Unix socket with
# test/agent-client.c, and await mode (a config without "cmd") by a stand-in
# for /stasis-agent (test/agent-shim.c) that also starts a driver playing
# the host over vsock loopback. Usage: native/guest/test/qemu-test.sh [case-name-filter]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
bin="$root/packages/native-x64-linux/bin"
kernel="${STASIS_KERNEL:-$bin/vmlinux}"
init="$bin/stasis-init"
agent="$bin/stasis-agent"
base="$bin/base-rootfs.tar.gz"
filter="${1:-}"

for f in "$kernel" "$init" "$agent" "$base"; do
  [[ -f "$f" ]] || { echo "qemu-test: missing $f" >&2; exit 1; }
done

work="$(mktemp -d)"
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT

# Root image: the base rootfs plus a few fixtures.
tree="$work/tree"
mkdir "$tree"
tar -xzf "$base" -C "$tree"
mkdir -p "$tree/opt/tools"
printf '#!/bin/sh\necho "hello-tool $0"\n' > "$tree/opt/tools/hello-tool"
chmod 0755 "$tree/opt/tools/hello-tool"
printf 'not a program\n' > "$tree/opt/tools/not-exec"
chmod 0644 "$tree/opt/tools/not-exec"
cat > "$tree/etc/environment" <<'ENV'
# test image
PATH="/opt/tools:/usr/bin:/bin"
FROM_IMAGE='image'
ENV
# The agent over a Unix socket, driven by the test client (the agent-unix
# case). Frame lines are normalized: pids and pty numbers vary.
cp "$agent" "$tree/opt/tools/stasis-agent"
musl-gcc -std=c11 -D_GNU_SOURCE -Os -static -o "$tree/opt/tools/agent-client" \
  "$root/native/guest/test/agent-client.c"
cat > "$tree/opt/tools/agent-checks" <<'SH'
#!/bin/sh
stasis-agent --listen unix:/tmp/a.sock &
i=0
while [ ! -S /tmp/a.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
c() { agent-client /tmp/a.sock "$@" | sed 's/"pid":[0-9]*/"pid":N/; s#/dev/pts/[0-9]*#/dev/pts/N#'; }
c '{"op":"ping"}'
c '{"op":"exec","cmd":"echo out; sleep 0.2; echo err >&2; exit 4"}'
c '{"op":"exec","argv":["no-such-cmd"]}'
c '{"op":"exec","argv":["cat"],"stdin":true}' 'a\x00b\n'
c '{"op":"exec","cmd":"stty size; tty; echo $TERM","pty":{"cols":100,"rows":30}}'
c '{"op":"exec","argv":["sleep","100"],"pty":{}}' '\x03'
c '{"op":"exec","cmd":"kill -9 $$"}'
c '{"op":"exec","argv":["head","-c","300000","/dev/zero"]}' | sed 's/^O .*/O data/' | uniq
c '{"op":"exec","cmd":"pwd","cwd":"/nope"}'
c '{"op":"write","path":"/tmp/d/e/f","mode":448}' 'hello\n'
stat -c %a /tmp/d/e/f
c '{"op":"read","path":"/tmp/d/e/f"}'
c '{"op":"secrets","secrets":{"K1":"v1","bad-key":"x"}}'
c '{"op":"exec","cmd":"echo $K1"}'
stat -c %a /run/stasis/secrets
# thaw, for real: the clock (from the boot epoch, 2023) jumps to 2027, the
# RNG takes the seed, the hostname changes, the monotonic clock does not.
c '{"op":"thaw","realtimeNs":"1800000000123456789","seed":"c3Rhc2lzIHRoYXcgc2VlZDogMDEyMzQ1Njc4OWFiY2Q=","hostname":"thawed-1"}' |
  sed 's/"clockStepNs":"[1-9][0-9]*"/"clockStepNs":"positive"/'
date -u +%Y-%m-%d
hostname
awk '{ print ($1 < 600) ? "uptime kept" : "uptime jumped: " $1 }' /proc/uptime
c '{"op":"thaw","realtimeNs":"0"}'
c '{"op":"thaw","realtimeNs":"9223372036854775808"}'
SH
chmod 0755 "$tree/opt/tools/agent-checks"
# Await mode: test/agent-shim.c becomes /stasis-agent in the initramfs
# (AGENT=shim) and runs this beside the real agent. It plays the host: the
# scenario comes from the kernel command line (stasis_test=...), its lines
# go to the console (ttyS0) prefixed "driver: ".
musl-gcc -std=c11 -D_GNU_SOURCE -Os -static -o "$work/agent-shim" "$root/native/guest/test/agent-shim.c"
cat > "$tree/opt/tools/start-driver" <<'SH'
#!/bin/sh
c() { agent-client vsock:1:1978 "$@"; }
scenario=$(sed -n 's/.*stasis_test=\([a-z-]*\).*/\1/p' /proc/cmdline)
{
  i=0
  until c '{"op":"ping"}' >/dev/null 2>&1 || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done
  case "$scenario" in
  start)
    c '{"op":"exec","cmd":"echo before:${A-unset}:$FROM_IMAGE; tr -c a-z- _ < /proc/$PPID/cmdline"}'
    c '{"op":"start","realtimeNs":"1800000000000000000","hostname":"started-1","machineId":"0123456789abcdef0123456789abcdef","cmd":["sh","-c","while [ ! -e /tmp/driver-done ]; do sleep 0.1; done; echo \"$A|$PWD|$FROM_IMAGE\"; cat /etc/machine-id; stat -c %a /etc/machine-id; hostname; date -u +%Y; ls /proc/$$/fd | tr \"\\n\" \" \"; echo"],"env":{"A":"from-start"},"cwd":"/etc"}' |
      sed 's/"clockStepNs":"[1-9][0-9]*"/"clockStepNs":"positive"/'
    c '{"op":"exec","cmd":"echo after:$A:$FROM_IMAGE"}'
    c '{"op":"start","realtimeNs":"1","cmd":["true"]}'
    # A restarted agent: the workload's environment, no --await-workload.
    sleep 1
    kill $PPID
    sleep 1.5
    i=0
    until c '{"op":"ping"}' >/dev/null 2>&1 || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done
    c '{"op":"exec","cmd":"echo restarted:$A; tr -c a-z- _ < /proc/$PPID/cmdline"}'
    touch /tmp/driver-done ;;
  bad-cwd)
    c '{"op":"start","realtimeNs":"1800000000000000000","cmd":["true"],"cwd":"/nope"}' ;;
  agent-dies)
    kill -9 $PPID ;;
  shutdown)
    c '{"op":"shutdown"}' ;;
  esac
} 2>&1 | sed 's/^/driver: /'
SH
mke2fs -q -t ext4 -L stasis-root -d "$tree" "$work/root.img" 32M >/dev/null
root_sum="$(sha256sum "$work/root.img")"

pass=0
failed=()

# run NAME CONFIG_JSON [upper|keep] [busybox-in-initramfs]
# (upper: a fresh ext4 upper disk as vdb; keep: reuse the previous one;
# AGENT=1: /stasis-agent in the initramfs, AGENT=shim: test/agent-shim.c
# there; APPEND: more kernel command line; UNTIL_MILESTONE=n: stop the VM
# 3 s after milestone n, status "idle" if it was still running then)
# Leaves the status in $status, ttyS1 bytes in $work/out, ttyS0 in $work/err.
run() {
  local name="$1" config="$2" upper="${3:-}" extra="${4:-}"
  local ird="$work/initrd" drives=()
  rm -rf "$ird" && mkdir -p "$ird/dev"
  cp "$init" "$ird/init"
  if [[ "${AGENT:-}" == shim ]]; then cp "$work/agent-shim" "$ird/stasis-agent"
  elif [[ -n "${AGENT:-}" ]]; then cp "$agent" "$ird/stasis-agent"; fi
  printf '%s' "$config" > "$ird/stasis-config.json"
  mknod "$ird/dev/console" c 5 1
  mkdir -p "$ird/etc" && echo 1700000000 > "$ird/etc/stasis-boot-epoch"
  if [[ -n "$extra" ]]; then mkdir -p "$ird/bin" && cp /bin/busybox "$ird/bin/busybox"; fi
  (cd "$ird" && find . | LC_ALL=C sort | cpio --quiet -o -H newc) > "$work/initrd.cpio"
  drives=(-drive "id=r,file=$work/root.img,format=raw,if=none,readonly=on"
          -device virtio-blk-device,drive=r)
  if [[ -n "$upper" ]]; then
    [[ "$upper" == keep ]] || rm -f "$work/upper.img"
    [[ -f "$work/upper.img" ]] || mke2fs -q -t ext4 -L stasis-upper "$work/upper.img" 16M >/dev/null
    drives+=(-drive "id=u,file=$work/upper.img,format=raw,if=none"
             -device virtio-blk-device,drive=u)
  fi
  rm -f "$work/out" "$work/err" "$work/milestones"
  # microvm gives only COM1 (and no virtio_mmio.device= without acpi=off):
  # COM2 is added by hand; isa-debugcon on 0xf5 records the milestones.
  # QEMU's exit code holds only 7 bits of the status ((status << 1) | 1), so
  # with EXIT_VIA=debugcon the status byte is recorded instead, and QEMU is
  # stopped once /init has fallen back to power-off (the VM just halts).
  local exit_dev=(-device isa-debug-exit,iobase=0xf4,iosize=1)
  if [[ "${EXIT_VIA:-}" == debugcon ]]; then
    exit_dev=(-chardev "file,id=x,path=$work/exitbyte" -device isa-debugcon,iobase=0xf4,chardev=x)
  fi
  rm -f "$work/exitbyte"
  set +e
  qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,acpi=off -m 128 \
    -nodefaults -no-user-config -nographic \
    -chardev "file,id=c0,path=$work/err" -serial chardev:c0 \
    -chardev "file,id=c1,path=$work/out" -device isa-serial,chardev=c1,iobase=0x2f8,irq=3 \
    -chardev "file,id=m,path=$work/milestones" -device isa-debugcon,iobase=0xf5,chardev=m \
    "${exit_dev[@]}" \
    -kernel "$kernel" -initrd "$work/initrd.cpio" "${drives[@]}" \
    -append "console=ttyS0 8250.nr_uarts=2 quiet panic=-1 rdinit=/init${APPEND:+ $APPEND}" </dev/null 2>"$work/qemu.log" &
  local qemu=$! rc i idle=
  for (( i = 0; i < 1200; i++ )); do
    kill -0 "$qemu" 2>/dev/null || break
    if [[ -s "$work/exitbyte" ]]; then sleep 1; kill "$qemu"; break; fi
    if [[ -n "${UNTIL_MILESTONE:-}" ]] && od -An -tu1 "$work/milestones" 2>/dev/null | grep -qw "$UNTIL_MILESTONE"; then
      sleep 3
      if kill -0 "$qemu" 2>/dev/null; then idle=1; fi
      break
    fi
    sleep 0.1
  done
  kill "$qemu" 2>/dev/null
  wait "$qemu"
  rc=$?
  set -e
  # The first byte is /init's; the kernel writes a 0 after it on power-off.
  if [[ -n "$idle" ]]; then status=idle
  elif [[ -s "$work/exitbyte" ]]; then status="$(od -An -tu1 -N1 "$work/exitbyte" | tr -d ' \n')"
  elif (( rc & 1 )); then status=$(( rc >> 1 )); else status="qemu-rc-$rc"; fi
  milestones="$(od -An -tu1 "$work/milestones" | tr -d ' \n')"
  current="$name"
}

expect() { # expect DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then pass=$((pass + 1)); else
    failed+=("$current: $what")
    echo "  FAIL $current: $what (status=$status milestones=$milestones)" >&2
    echo "  ttyS1: $(head -c 160 "$work/out" | od -c)" >&2
    echo "  ttyS0: $(tail -c 600 "$work/err" | tr -d "\\0")" >&2
  fi
}
out_is() { [[ "$(cat "$work/out"; echo x)" == "$1"x ]]; }
err_has() { grep -qF -- "$1" "$work/err"; }
status_is() { [[ "$status" == "$1" ]]; }
want() { [[ -z "$filter" || "$1" == *"$filter"* ]]; }
cfg_root='"root":"/dev/vda"'

if want streams; then
  run streams '{"cmd":["/bin/sh","-c","echo out; echo err >&2; exit 3"],'"$cfg_root"'}'
  expect "status 3" status_is 3
  expect "stdout on ttyS1, raw" out_is $'out\n'
  expect "stdout not on ttyS0" bash -c "! grep -qx out '$work/err'"
  expect "stderr on ttyS0, raw" bash -c "grep -q \$'^err\$' '$work/err' && ! grep -q \$'err\\r' '$work/err'"
  expect "milestones 1 2 3" [ "$milestones" = 123 ]
fi
if want notfound; then
  run notfound '{"cmd":["no-such-command"],'"$cfg_root"'}'
  expect "status 127" status_is 127
  expect "message" err_has "stasis-init: error: exec no-such-command: No such file or directory"
  run notfound-one-dir '{"cmd":["no-such-command"],"env":{"PATH":"/etc/passwd"},'"$cfg_root"'}'
  expect "status 127 (PATH of one non-directory entry)" status_is 127
fi
if want notexec; then
  run notexec '{"cmd":["not-exec"],'"$cfg_root"'}'
  expect "status 126" status_is 126
  expect "message" err_has "exec not-exec: Permission denied"
  run notexec-abs '{"cmd":["/opt/tools/not-exec"],'"$cfg_root"'}'
  expect "status 126" status_is 126
fi
if want signal; then
  EXIT_VIA=debugcon run signal '{"cmd":["/bin/sh","-c","kill -9 $$"],'"$cfg_root"'}'
  expect "status 137 (exact byte)" status_is 137
  expect "power-off fallback reached" err_has "reboot: System halted"
  run signal-exit-port '{"cmd":["/bin/sh","-c","kill -15 $$"],'"$cfg_root"'}'
  expect "status 143 through isa-debug-exit (7 bits: 15)" status_is 15
fi
if want env; then
  run env '{"cmd":["sh","-c","echo \"$A|$FROM_IMAGE|$PATH|$HOME|$TERM\"; pwd; hello-tool"],"env":{"A":"x y\u00e9"},"cwd":"/etc",'"$cfg_root"'}'
  expect "status 0" status_is 0
  expect "env, cwd, PATH from /etc/environment" out_is $'x y\xc3\xa9|image|/opt/tools:/usr/bin:/bin|/root|linux\n/etc\nhello-tool /opt/tools/hello-tool\n'
  run env-override '{"cmd":["sh","-c","echo $PATH; echo $FROM_IMAGE"],"env":{"PATH":"/bin","FROM_IMAGE":"cfg"},'"$cfg_root"'}'
  expect "config env wins" out_is $'/bin\ncfg\n'
fi
if want mounts; then
  run mounts '{"cmd":["sh","-c","stat -c %a /tmp; cat /proc/1/comm; ls /sys/class/tty | grep -c ttyS; grep -c -E \" / overlay | /dev devtmpfs \" /proc/mounts; cat /etc/os-release | head -1; date -u +%Y"],'"$cfg_root"'}'
  expect "status 0" status_is 0
  expect "tmp 1777, proc, sys, overlay root, devtmpfs, clock from boot epoch" out_is $'1777\ninit\n2\n2\nNAME="stasis base (busybox)"\n2023\n'
fi
if want upper; then
  run upper '{"cmd":["sh","-c","echo data > /etc/new-file && rm /etc/hostname && cat /etc/new-file"],'"$cfg_root"',"upper":"/dev/vdb"}' upper
  expect "status 0" status_is 0
  expect "output" out_is $'data\n'
  expect "write landed in the upper layer" bash -c "debugfs -R 'cat /upper/etc/new-file' '$work/upper.img' 2>/dev/null | grep -x data >/dev/null"
  expect "root image untouched" [ "$(sha256sum "$work/root.img")" = "$root_sum" ]
  run upper-again '{"cmd":["sh","-c","cat /etc/new-file; test -e /etc/hostname || echo gone"],'"$cfg_root"',"upper":"/dev/vdb"}' keep
  expect "a reused upper disk keeps its changes" out_is $'data\ngone\n'
  expect "status 0" status_is 0
  run tmpfs-upper '{"cmd":["sh","-c","echo x > /x && cat /x && touch /bin/y"],'"$cfg_root"'}'
  expect "tmpfs upper writable" out_is $'x\n'
  expect "status 0" status_is 0
fi
if want orphans; then
  run orphans '{"cmd":["sh","-c","(sleep 30 &); (exit 7) & wait; exit 4"],'"$cfg_root"'}'
  expect "status 4 without waiting for orphans" status_is 4
fi
if want initramfs; then
  run initramfs '{"cmd":["/bin/busybox","sh","-c","echo in-initramfs; /bin/busybox stat -c %a /tmp; exit 5"]}' "" busybox
  expect "status 5" status_is 5
  expect "output" out_is $'in-initramfs\n1777\n'
fi
if want term; then
  run term '{"cmd":["sh","-c","trap \"echo got-term; exit 3\" TERM; kill -TERM 1; sleep 5 & wait"],'"$cfg_root"'}'
  expect "SIGTERM to /init reaches the command" out_is $'got-term\n'
  expect "status 3" status_is 3
fi
if want agent; then
  AGENT=1 run agent '{"cmd":["sh","-c","sleep 1; grep -c \" /dev/pts devpts \" /proc/mounts; test -c /dev/ptmx && echo ptmx; cat /proc/[0-9]*/comm | grep -x stasis-agent"],'"$cfg_root"'}'
  expect "status 0" status_is 0
  expect "devpts, /dev/ptmx, the agent runs" out_is $'1\nptmx\nstasis-agent\n'
  expect "milestone 4 (agent listening) between 1 and 3" bash -c "[[ '$milestones' =~ ^1(24|42)3\$ ]]"
  expect "no agent messages" bash -c "! grep -q stasis-agent '$work/err'"
  AGENT=1 run agent-restart '{"cmd":["sh","-c","sleep 1.5; p=$(pidof stasis-agent); kill $p; sleep 1; q=$(pidof stasis-agent); [ -n \"$q\" ] && [ \"$q\" != \"$p\" ] && echo restarted"],'"$cfg_root"'}'
  expect "a killed agent is restarted" out_is $'restarted\n'
  expect "message" err_has "stasis-init: error: the agent exited (status 143); restarting it"
  AGENT=1 run agent-initramfs '{"cmd":["/bin/busybox","sh","-c","/bin/busybox sleep 1; /bin/busybox cat /proc/[0-9]*/comm | /bin/busybox grep -x stasis-agent"]}' "" busybox
  expect "the agent also runs without a root disk" out_is $'stasis-agent\n'
  run no-agent '{"cmd":["sh","-c","sleep 1; cat /proc/[0-9]*/comm | grep -c stasis-agent"],'"$cfg_root"'}'
  expect "no /stasis-agent, no agent, no complaint" out_is $'0\n'
  expect "status 1 (grep -c found none)" status_is 1
fi
if want agent-unix; then
  run agent-unix '{"cmd":["/opt/tools/agent-checks"],'"$cfg_root"'}'
  expect "status 0" status_is 0
  expect "the protocol under the guest kernel" out_is 'A {"version":1}
X {"code":0}
A {"pid":N}
O out\n
E err\n
X {"code":4}
A {"pid":N}
E stasis-agent: no-such-cmd: No such file or directory\n
X {"code":127}
A {"pid":N}
O a\x00b\n
X {"code":0}
A {"pid":N}
O 30 100\r\n/dev/pts/N\r\nxterm-256color\r\n
X {"code":0}
A {"pid":N}
O ^C
X {"code":130,"signal":2}
A {"pid":N}
X {"code":137,"signal":9}
A {"pid":N}
O data
X {"code":0}
F {"error":"ENOENT","message":"cwd /nope: No such file or directory"}
X {"code":0}
700
A {"size":6}
O hello\n
X {"code":0}
X {"code":0,"accepted":1}
A {"pid":N}
O v1\n
X {"code":0}
600
X {"code":0,"clockStepNs":"positive"}
2027-01-15
thawed-1
uptime kept
F {"error":"EINVAL","message":"clock_settime: Invalid argument"}
F {"error":"EINVAL","message":"\\"realtimeNs\\" must be a decimal string of nanoseconds since the epoch, 0 to 9223372036854775807: Invalid argument"}
'
fi
if want await; then
  # No "cmd": the machine comes up, milestone 5, and /init waits.
  AGENT=1 UNTIL_MILESTONE=5 run await-idle '{'"$cfg_root"'}'
  expect "still waiting 3 s after milestone 5" status_is idle
  expect "milestones 1, then 4 and 5, no 2" bash -c "[[ '$milestones' =~ ^1(45|54)\$ ]]"
  expect "no error" bash -c "! grep -q 'stasis-init: error' '$work/err'"
  # The whole way: start over vsock loopback from the driver (agent-shim.c).
  AGENT=shim APPEND=stasis_test=start run await-start '{'"$cfg_root"'}'
  expect "status 0" status_is 0
  expect "the workload ran with its env and cwd, the image env, machine-id 0444, hostname, clock; no pipe fds" \
    out_is $'from-start|/etc|image\n0123456789abcdef0123456789abcdef\n444\nstarted-1\n2027\n0 1 2 \n'
  expect "milestones 1, 4 and 5, 2, 4 (restarted agent), 3" bash -c "[[ '$milestones' =~ ^1(45|54)243\$ ]]"
  expect "before start: the machine's env, agent in await mode" err_has 'driver: O before:unset:image\nstasis-agent_--await-workload_'
  expect "start answered" err_has 'driver: X {"code":0,"clockStepNs":"positive"}'
  expect "after start: the workload's env" err_has 'driver: O after:from-start:image\n'
  expect "a second start" err_has 'driver: F {"error":"EALREADY"'
  expect "a restarted agent: the workload's env, no --await-workload" err_has 'driver: O restarted:from-start\nstasis-agent_'
  AGENT=shim APPEND=stasis_test=bad-cwd run await-bad-cwd '{'"$cfg_root"'}'
  expect "status 125" status_is 125
  expect "message" err_has 'stasis-init: error: workload: chdir /nope: No such file or directory'
  expect "milestones 1, 4 and 5 only" bash -c "[[ '$milestones' =~ ^1(45|54)\$ ]]"
  AGENT=shim APPEND=stasis_test=agent-dies run await-agent-dies '{'"$cfg_root"'}'
  expect "status 125" status_is 125
  expect "message" err_has 'stasis-init: error: the agent ended without handing over a workload'
  # The host stops an idle guest: `shutdown` signals /init, which ends the VM
  # as a command killed by SIGTERM would, rather than hold the signal.
  EXIT_VIA=debugcon AGENT=shim APPEND=stasis_test=shutdown run await-shutdown '{'"$cfg_root"'}'
  expect "status 143" status_is 143
  expect "message" err_has 'stasis-init: error: stopped before a workload arrived'
  run await-no-agent '{'"$cfg_root"'}'
  expect "status 125" status_is 125
  expect "message" err_has 'stasis-init: error: /stasis-config.json has no "cmd" and there is no /stasis-agent to receive the workload'
fi
if want setup; then
  run bad-json '{"cmd":["a"],}'
  expect "status 125" status_is 125
  expect "message" err_has 'stasis-init: error: /stasis-config.json (byte 13): expected a string'
  run env-without-cmd '{"env":{}}'
  expect "status 125" status_is 125
  expect "message" err_has 'stasis-init: error: /stasis-config.json: "env" and "cwd" need "cmd"'
  run bad-root '{"cmd":["sh"],"root":"/dev/vdz"}'
  expect "status 125" status_is 125
  expect "message" err_has 'stasis-init: error: mount root /dev/vdz (ext4) on /.lower: No such file or directory'
  run bad-cwd '{"cmd":["sh"],"cwd":"/nope",'"$cfg_root"'}'
  expect "status 125" status_is 125
  expect "message" err_has 'stasis-init: error: chdir /nope: No such file or directory'
  expect "milestone 1 only" [ "$milestones" = 1 ]
fi

echo "qemu-test: $pass checks passed, ${#failed[@]} failed"
for f in "${failed[@]}"; do echo "  failed: $f"; done
(( ${#failed[@]} == 0 ))
