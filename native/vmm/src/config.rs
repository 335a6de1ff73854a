//! Command line and environment (docs/guest-contract.md, "VMM ↔ runtime").
//! Flags win over environment variables. Bad input is a `ConfigError`;
//! main prints it and exits with status 2.

use std::fmt;
use std::path::PathBuf;

pub const DEFAULT_MEMORY_MIB: u64 = 512;
pub const MIN_MEMORY_MIB: u64 = 32;
/// 1 TiB: far beyond anything this VMM is used for; guards against typos.
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
pub const MAX_CPUS: u32 = 32;

pub const USAGE: &str = "\
usage: stasis-vmm --kernel <vmlinux> [options]
       stasis-vmm --restore <dir> --disk ... [options]
  --kernel <path>        uncompressed vmlinux (env STASIS_KERNEL)
  --restore <dir>        continue the VM saved in <dir> (docs/vmstate.md);
                         kernel, initrd, memory, cpus and append come from it
  --initrd <path>        uncompressed newc cpio initramfs
  --memory <MiB>         guest RAM in MiB (env STASIS_MEMORY; default 512)
  --cpus <n>             vCPUs (default 1)
  --disk <path>[:ro]     virtio-blk disk; repeat for vda, vdb, ...
  --append <text>        extra kernel command line
  --control <path>       JSON-lines control socket
  --report-fd <n>        write JSON-lines events to this open descriptor
  --vsock <path>         virtio-vsock bridge: Unix socket for host <-> guest
                         streams, guest CID 3 (env STASIS_VSOCK)
  --snapshot-path <dir>  where SIGUSR1 writes a snapshot (env STASIS_SNAPSHOT_PATH)
  --help                 this text";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    pub path: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// None exactly when `restore` is set.
    pub kernel: Option<PathBuf>,
    /// `--restore`: the snapshot directory to continue from.
    pub restore: Option<PathBuf>,
    /// Where SIGUSR1 writes a snapshot.
    pub snapshot_path: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub memory_mib: u64,
    pub cpus: u32,
    pub disks: Vec<DiskConfig>,
    pub append: Option<String>,
    pub control: Option<PathBuf>,
    pub report_fd: Option<i32>,
    /// The vsock bridge socket (docs/agent-protocol.md §1).
    pub vsock: Option<PathBuf>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Config),
    Help,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

fn parse_memory(v: &str, from: &str) -> Result<u64, ConfigError> {
    let mib: u64 = match v.parse() {
        Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return err(format!("{from} must be a whole number of MiB without a unit, got {v:?}")),
    };
    if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&mib) {
        return err(format!("{from} must be between {MIN_MEMORY_MIB} and {MAX_MEMORY_MIB} MiB, got {mib}"));
    }
    Ok(mib)
}

fn parse_disk(v: &str) -> Result<DiskConfig, ConfigError> {
    let (path, read_only) = match v.rsplit_once(':') {
        Some((p, "ro")) => (p, true),
        Some((p, "rw")) => (p, false),
        _ => (v, false),
    };
    if path.is_empty() {
        return err(format!("--disk needs a path, got {v:?}"));
    }
    Ok(DiskConfig { path: PathBuf::from(path), read_only })
}

/// Parses `args` (without the program name); `env` looks up variables.
pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, ConfigError> {
    let mut kernel = None;
    let mut initrd = None;
    let mut memory = None;
    let mut cpus = None;
    let mut disks = Vec::new();
    let mut append: Option<String> = None;
    let mut control = None;
    let mut report_fd = None;
    let mut vsock = None;
    let mut restore = None;
    let mut snapshot_path = None;

    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Parsed::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let known = [
            "--kernel", "--initrd", "--memory", "--cpus", "--disk", "--append", "--control", "--report-fd",
            "--vsock", "--restore", "--snapshot-path",
        ];
        if !known.contains(&flag) {
            return err(format!("unknown argument {arg:?} (see --help)"));
        }
        let value = match inline {
            Some(v) => v,
            None => match it.next() {
                Some(v) => v.clone(),
                None => return err(format!("{flag} needs a value")),
            },
        };
        match flag {
            "--kernel" => kernel = Some(PathBuf::from(value)),
            "--initrd" => initrd = Some(PathBuf::from(value)),
            "--memory" => memory = Some(parse_memory(&value, "--memory")?),
            "--cpus" => {
                cpus = Some(match value.parse::<u32>() {
                    Ok(n) if (1..=MAX_CPUS).contains(&n) => n,
                    _ => return err(format!("--cpus must be between 1 and {MAX_CPUS}, got {value:?}")),
                })
            }
            "--disk" => disks.push(parse_disk(&value)?),
            "--append" => {
                // Repeated --append flags accumulate.
                append = Some(match append {
                    Some(a) => format!("{a} {value}"),
                    None => value,
                })
            }
            "--control" => control = Some(PathBuf::from(value)),
            "--report-fd" => {
                report_fd = Some(match value.parse::<i32>() {
                    Ok(n) if n >= 0 => n,
                    _ => return err(format!("--report-fd must be a descriptor number, got {value:?}")),
                })
            }
            "--vsock" => {
                if value.is_empty() {
                    return err("--vsock needs a socket path");
                }
                vsock = Some(PathBuf::from(value))
            }
            "--restore" | "--snapshot-path" => {
                if value.is_empty() {
                    return err(format!("{flag} needs a directory"));
                }
                let dir = Some(PathBuf::from(value));
                if flag == "--restore" { restore = dir } else { snapshot_path = dir }
            }
            _ => unreachable!("flag list checked above"),
        }
    }

    if restore.is_some() {
        let given: Vec<&str> = [
            ("--kernel", kernel.is_some()),
            ("--initrd", initrd.is_some()),
            ("--memory", memory.is_some()),
            ("--cpus", cpus.is_some()),
            ("--append", append.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(f, _)| *f)
        .collect();
        if !given.is_empty() {
            return err(format!("{} cannot be combined with --restore: the snapshot decides them", given.join(", ")));
        }
    }
    let kernel = match (&restore, kernel.or_else(|| env("STASIS_KERNEL").filter(|k| !k.is_empty()).map(PathBuf::from))) {
        (Some(_), _) => None,
        (None, Some(k)) => Some(k),
        (None, None) => return err("no kernel: pass --kernel <vmlinux> or set STASIS_KERNEL"),
    };
    let snapshot_path = snapshot_path.or_else(|| env("STASIS_SNAPSHOT_PATH").filter(|v| !v.is_empty()).map(PathBuf::from));
    let memory_mib = match memory {
        Some(m) => m,
        None => match env("STASIS_MEMORY").filter(|m| !m.is_empty()) {
            Some(m) => parse_memory(&m, "STASIS_MEMORY")?,
            None => DEFAULT_MEMORY_MIB,
        },
    };
    let vsock = vsock.or_else(|| env("STASIS_VSOCK").filter(|v| !v.is_empty()).map(PathBuf::from));
    if append.as_deref().is_some_and(|a| a.contains('\0') || a.contains('\n')) {
        return err("--append must not contain NUL or newline characters");
    }
    Ok(Parsed::Run(Config {
        kernel,
        restore,
        snapshot_path,
        initrd,
        memory_mib,
        cpus: cpus.unwrap_or(1),
        disks,
        append,
        control,
        report_fd,
        vsock,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }
    fn no_env(_: &str) -> Option<String> {
        None
    }
    fn run(a: &[&str]) -> Result<Config, ConfigError> {
        match parse(&args(a), &no_env)? {
            Parsed::Run(c) => Ok(c),
            Parsed::Help => panic!("unexpected help"),
        }
    }

    #[test]
    fn full_command_line() {
        let c = run(&[
            "--kernel", "/k", "--initrd=/i", "--memory", "128", "--cpus", "2", "--disk", "/a.img:ro", "--disk",
            "/b.img", "--append", "x=1", "--append", "y", "--control", "/tmp/s", "--report-fd", "3", "--vsock",
            "/tmp/v.sock",
        ])
        .unwrap();
        assert_eq!(c.kernel, Some(PathBuf::from("/k")));
        assert_eq!(c.initrd, Some(PathBuf::from("/i")));
        assert_eq!((c.memory_mib, c.cpus), (128, 2));
        assert_eq!(c.disks, vec![
            DiskConfig { path: "/a.img".into(), read_only: true },
            DiskConfig { path: "/b.img".into(), read_only: false },
        ]);
        assert_eq!(c.append.as_deref(), Some("x=1 y"));
        assert_eq!(c.control, Some(PathBuf::from("/tmp/s")));
        assert_eq!(c.report_fd, Some(3));
        assert_eq!(c.vsock, Some(PathBuf::from("/tmp/v.sock")));
    }

    #[test]
    fn vsock_flag_and_environment() {
        assert_eq!(run(&["--kernel", "/k"]).unwrap().vsock, None);
        assert_eq!(run(&["--kernel", "/k", "--vsock=/a.sock"]).unwrap().vsock, Some(PathBuf::from("/a.sock")));
        let env = |k: &str| (k == "STASIS_VSOCK").then(|| "/env.sock".to_string());
        let Parsed::Run(c) = parse(&args(&["--kernel", "/k"]), &env).unwrap() else { panic!() };
        assert_eq!(c.vsock, Some(PathBuf::from("/env.sock")));
        // The flag wins; an empty variable means unset.
        let Parsed::Run(c) = parse(&args(&["--kernel", "/k", "--vsock", "/flag.sock"]), &env).unwrap() else { panic!() };
        assert_eq!(c.vsock, Some(PathBuf::from("/flag.sock")));
        let empty = |k: &str| (k == "STASIS_VSOCK").then(String::new);
        let Parsed::Run(c) = parse(&args(&["--kernel", "/k"]), &empty).unwrap() else { panic!() };
        assert_eq!(c.vsock, None);
        assert!(run(&["--kernel", "/k", "--vsock"]).is_err());
        assert!(run(&["--kernel", "/k", "--vsock="]).is_err());
    }

    #[test]
    fn defaults_and_environment() {
        let c = run(&["--kernel", "/k"]).unwrap();
        assert_eq!((c.memory_mib, c.cpus, c.initrd, c.report_fd), (512, 1, None, None));
        let env = |k: &str| match k {
            "STASIS_KERNEL" => Some("/env-k".to_string()),
            "STASIS_MEMORY" => Some("256".to_string()),
            _ => None,
        };
        let Parsed::Run(c) = parse(&[], &env).unwrap() else { panic!() };
        assert_eq!((c.kernel, c.memory_mib), (Some(PathBuf::from("/env-k")), 256));
        // Flags win over the environment.
        let Parsed::Run(c) = parse(&args(&["--kernel", "/k", "--memory", "64"]), &env).unwrap() else { panic!() };
        assert_eq!((c.kernel, c.memory_mib), (Some(PathBuf::from("/k")), 64));
        let bad_env = |k: &str| (k == "STASIS_MEMORY").then(|| "1G".to_string());
        assert!(parse(&args(&["--kernel", "/k"]), &bad_env).is_err());
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in [
            &["--memory", "128"][..],
            &["--kernel"],
            &["--kernel", "/k", "--memory", "128M"],
            &["--kernel", "/k", "--memory", "-1"],
            &["--kernel", "/k", "--memory", "+128"],
            &["--kernel", "/k", "--memory", "8"],
            &["--kernel", "/k", "--memory", "99999999999999999999"],
            &["--kernel", "/k", "--cpus", "0"],
            &["--kernel", "/k", "--cpus", "many"],
            &["--kernel", "/k", "--disk", ":ro"],
            &["--kernel", "/k", "--report-fd", "-3"],
            &["--kernel", "/k", "--bogus"],
            &["--kernel", "/k", "stray"],
            &["--kernel", "/k", "--append", "a\nb"],
        ] {
            assert!(run(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(parse(&args(&["--help"]), &no_env), Ok(Parsed::Help));
    }

    #[test]
    fn restore_takes_the_machine_from_the_snapshot() {
        let c = run(&["--restore", "/snap", "--disk", "/r.img:ro", "--snapshot-path", "/out"]).unwrap();
        assert_eq!((c.restore, c.kernel), (Some(PathBuf::from("/snap")), None));
        assert_eq!(c.snapshot_path, Some(PathBuf::from("/out")));
        // STASIS_KERNEL does not matter to a restore; the flags that the
        // snapshot decides are refused, naming every one given.
        let env = |k: &str| (k == "STASIS_KERNEL").then(|| "/env-k".to_string());
        let Parsed::Run(c) = parse(&args(&["--restore", "/snap"]), &env).unwrap() else { panic!() };
        assert_eq!(c.kernel, None);
        let e = run(&["--restore", "/snap", "--kernel", "/k", "--cpus", "2"]).unwrap_err();
        assert!(e.0.contains("--kernel, --cpus cannot be combined with --restore"), "{e}");
        for flag in ["--initrd", "--memory", "--append"] {
            let v = if flag == "--memory" { "64" } else { "/x" };
            assert!(run(&["--restore", "/snap", flag, v]).is_err(), "{flag}");
        }
        assert!(run(&["--restore="]).is_err());
        let env = |k: &str| (k == "STASIS_SNAPSHOT_PATH").then(|| "/env-out".to_string());
        let Parsed::Run(c) = parse(&args(&["--kernel", "/k"]), &env).unwrap() else { panic!() };
        assert_eq!(c.snapshot_path, Some(PathBuf::from("/env-out")));
    }

    #[test]
    fn disk_paths_may_contain_colons() {
        assert_eq!(parse_disk("/a:b.img").unwrap(), DiskConfig { path: "/a:b.img".into(), read_only: false });
        assert_eq!(parse_disk("/a:b.img:ro").unwrap(), DiskConfig { path: "/a:b.img".into(), read_only: true });
    }
}
