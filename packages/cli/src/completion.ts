/**
 * `stasis completion <bash|zsh|fish>`: completion scripts generated from the
 * command schema. Targets complete to live VM names, read at completion time
 * from `stasis list --json` (see listJson: entries are pretty-printed, so a
 * top-level `"name"` key is the only one indented by exactly four spaces).
 */
import { commands, globalFlags, type CommandSpec, type FlagSpec } from "./parse/schema.js";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

/** sed program printing the name of every VM in `stasis list --json`. */
const NAMES_SED = `sed -n 's/^    "name": "\\(.*\\)",\\{0,1\\}$/\\1/p'`;

function spellings(c: CommandSpec): string[] {
  return [c.name, ...(c.aliases ?? [])];
}

function flagSpellings(f: FlagSpec): string[] {
  return [`--${f.name}`, ...(f.aliases ?? []).map((a) => `--${a}`), ...(f.short ? [`-${f.short}`] : [])];
}

/** Flags whose value is the next word (optional values take only digits, so they are not). */
function takesValue(f: FlagSpec): boolean {
  return f.value !== undefined && !f.optionalValue;
}

function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** POSIX-shell helper functions shared by the bash and zsh scripts. */
function shellHelpers(): string {
  const flagCases = commands
    .filter((c) => c.flags.length > 0)
    .map((c) => `    ${spellings(c).join("|")}) printf '%s\\n' ${sq(c.flags.flatMap(flagSpellings).join(" "))} ;;`);
  const valuePatterns = commands.flatMap((c) =>
    spellings(c).flatMap((s) => c.flags.filter(takesValue).flatMap((f) => flagSpellings(f).map((fl) => `"${s} ${fl}"`))),
  );
  const positionalCases = commands.flatMap((c) =>
    c.positionals.map((p, i) => {
      const kind = p.choices ? `choices ${p.choices.join(" ")}` : p.kind;
      return `    ${spellings(c).map((s) => `"${s}:${i}"`).join("|")}) printf '%s\\n' ${sq(kind)} ;;`;
    }),
  );
  return [
    `_stasis_vm_names() {`,
    `  stasis list --json 2>/dev/null | ${NAMES_SED}`,
    `}`,
    ``,
    `# The flags of a command.`,
    `_stasis_flags() {`,
    `  case "$1" in`,
    ...flagCases,
    `  esac`,
    `}`,
    ``,
    `# Whether flag $2 of command $1 takes the next word as its value.`,
    `_stasis_flag_takes_value() {`,
    `  case "$1 $2" in`,
    ...(valuePatterns.length > 0 ? [`    ${valuePatterns.join("|")}) return 0 ;;`] : []),
    `  esac`,
    `  return 1`,
    `}`,
    ``,
    `# What positional number $2 of command $1 holds: target, file, dir, word or "choices a b c".`,
    `_stasis_positional() {`,
    `  case "$1:$2" in`,
    ...positionalCases,
    `  esac`,
    `}`,
    ``,
    `# Given the words before the cursor (the command name first), prints where`,
    `# the cursor is: "top", "guest", "value" or "<command> <positional-index>".`,
    `_stasis_where() {`,
    `  local w cmd="" npos=0 skip=0`,
    `  shift`,
    `  for w in "$@"; do`,
    `    if [ "$skip" = 1 ]; then skip=0; continue; fi`,
    `    if [ -z "$cmd" ]; then`,
    `      case "$w" in -*) continue ;; esac`,
    `      cmd="$w"`,
    `      continue`,
    `    fi`,
    `    case "$w" in`,
    `      --) echo guest; return 0 ;;`,
    `      --*=*) ;;`,
    `      -*) _stasis_flag_takes_value "$cmd" "$w" && skip=1 ;;`,
    `      *) npos=$((npos + 1)) ;;`,
    `    esac`,
    `  done`,
    `  if [ -z "$cmd" ]; then echo top`,
    `  elif [ "$skip" = 1 ]; then echo value`,
    `  else echo "$cmd $npos"`,
    `  fi`,
    `}`,
  ].join("\n");
}

function topWords(): string {
  return [...commands.flatMap(spellings), ...globalFlags.flatMap(flagSpellings)].join(" ");
}

export function bashCompletion(): string {
  return `# stasis completion for bash. Load it with:  eval "$(stasis completion bash)"
${shellHelpers()}

_stasis() {
  local line="\${COMP_LINE:0:COMP_POINT}"
  local -a words
  read -ra words <<< "$line"
  case "$line" in *[[:space:]]) words+=("") ;; esac
  local n=\${#words[@]}
  local cur="\${words[n-1]}"
  local where cmd pos kind
  COMPREPLY=()
  where="$(_stasis_where "\${words[@]:0:n-1}")"
  case "$where" in
    top)
      COMPREPLY=($(compgen -W ${sq(topWords())} -- "$cur"))
      return 0 ;;
    guest|value) return 0 ;;
  esac
  cmd="\${where% *}"
  pos="\${where##* }"
  case "$cur" in
    -*)
      COMPREPLY=($(compgen -W "$(_stasis_flags "$cmd")" -- "$cur"))
      return 0 ;;
  esac
  kind="$(_stasis_positional "$cmd" "$pos")"
  case "$kind" in
    target)
      local IFS=$'\\n'
      COMPREPLY=($(compgen -W "$(_stasis_vm_names)" -- "$cur")) ;;
    "choices "*)
      COMPREPLY=($(compgen -W "\${kind#choices }" -- "$cur")) ;;
    dir)
      COMPREPLY=($(compgen -d -- "$cur")) ;;
  esac
  return 0
}

complete -o default -F _stasis stasis
`;
}

function zshDescribe(c: CommandSpec): string[] {
  return spellings(c).map((s) => sq(`${s}:${c.summary.replace(/:/g, "\\:")}`));
}

export function zshCompletion(): string {
  return `#compdef stasis
# stasis completion for zsh. Load it with:  eval "$(stasis completion zsh)"
# (after compinit), or save it as _stasis in a directory on $fpath.
${shellHelpers()}

_stasis() {
  local where cmd pos kind
  local -a cmds names
  where="$(_stasis_where "\${(@)words[1,CURRENT-1]}")"
  case "$where" in
    top)
      if [[ \${words[CURRENT]} == -* ]]; then
        compadd -- ${globalFlags.flatMap(flagSpellings).join(" ")}
      else
        cmds=(${commands.flatMap(zshDescribe).join(" ")})
        _describe 'command' cmds
      fi
      return ;;
    guest|value) _files; return ;;
  esac
  cmd="\${where% *}"
  pos="\${where##* }"
  if [[ \${words[CURRENT]} == -* ]]; then
    compadd -- \${=\$(_stasis_flags "$cmd")}
    return
  fi
  kind="$(_stasis_positional "$cmd" "$pos")"
  case "$kind" in
    target)
      names=(\${(f)"$(_stasis_vm_names)"})
      compadd -a names ;;
    "choices "*)
      compadd -- \${=kind#choices } ;;
    file) _files ;;
    dir) _files -/ ;;
  esac
}

if [[ "\${funcstack[1]}" == _stasis ]]; then
  _stasis "$@"
else
  compdef _stasis stasis
fi
`;
}

function fq(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

export function fishCompletion(): string {
  const lines: string[] = [
    `# stasis completion for fish. Load it with:  stasis completion fish | source`,
    ``,
    `function __stasis_vm_names`,
    `    stasis list --json 2>/dev/null | ${NAMES_SED}`,
    `end`,
    ``,
    `# Whether flag $argv[2] of command $argv[1] takes the next word as its value.`,
    `function __stasis_flag_takes_value`,
    `    switch "$argv[1] $argv[2]"`,
  ];
  const valuePatterns = commands.flatMap((c) =>
    spellings(c).flatMap((s) => c.flags.filter(takesValue).flatMap((f) => flagSpellings(f).map((fl) => fq(`${s} ${fl}`)))),
  );
  if (valuePatterns.length > 0) lines.push(`        case ${valuePatterns.join(" ")}`, `            return 0`);
  lines.push(
    `    end`,
    `    return 1`,
    `end`,
    ``,
    `# Where the cursor is: top, guest, value or <command>:<positional-index>.`,
    `function __stasis_where`,
    `    set -l tokens (commandline -opc)`,
    `    set -e tokens[1]`,
    `    set -l cmd ""`,
    `    set -l npos 0`,
    `    set -l skip 0`,
    `    for w in $tokens`,
    `        if test $skip -eq 1`,
    `            set skip 0`,
    `            continue`,
    `        end`,
    `        if test -z "$cmd"`,
    `            if string match -q -- '-*' $w`,
    `                continue`,
    `            end`,
    `            set cmd $w`,
    `            continue`,
    `        end`,
    `        if test "$w" = "--"`,
    `            echo guest`,
    `            return 0`,
    `        else if string match -q -- '-*' $w`,
    `            if not string match -q -- '--*=*' $w; and __stasis_flag_takes_value $cmd $w`,
    `                set skip 1`,
    `            end`,
    `        else`,
    `            set npos (math $npos + 1)`,
    `        end`,
    `    end`,
    `    if test -z "$cmd"`,
    `        echo top`,
    `    else if test $skip -eq 1`,
    `        echo value`,
    `    else`,
    `        echo "$cmd:$npos"`,
    `    end`,
    `end`,
    ``,
    `function __stasis_at`,
    `    contains -- (__stasis_where) $argv`,
    `end`,
    ``,
    `complete -c stasis -f`,
    `complete -c stasis -n '__stasis_at guest value' -F`,
  );
  for (const f of globalFlags) {
    lines.push(`complete -c stasis -n '__stasis_at top'${fishFlag(f)}`);
  }
  for (const c of commands) {
    for (const s of spellings(c)) lines.push(`complete -c stasis -n '__stasis_at top' -a ${fq(s)} -d ${fq(c.summary)}`);
    const seen = `__fish_seen_subcommand_from ${spellings(c).join(" ")}`;
    for (const f of c.flags) lines.push(`complete -c stasis -n ${fq(seen)}${fishFlag(f)}`);
    c.positionals.forEach((p, i) => {
      const at = `__stasis_at ${spellings(c).map((s) => `${s}:${i}`).join(" ")}`;
      if (p.choices) lines.push(`complete -c stasis -n ${fq(at)} -a ${fq(p.choices.join(" "))}`);
      else if (p.kind === "target") lines.push(`complete -c stasis -n ${fq(at)} -a '(__stasis_vm_names)' -d 'VM'`);
      else if (p.kind === "file" || p.kind === "dir") lines.push(`complete -c stasis -n ${fq(at)} -F`);
    });
  }
  return lines.join("\n") + "\n";
}

function fishFlag(f: FlagSpec): string {
  const names = [`-l ${f.name}`, ...(f.aliases ?? []).map((a) => `-l ${a}`), ...(f.short ? [`-s ${f.short}`] : [])];
  return ` ${names.join(" ")}${takesValue(f) ? " -r" : ""} -d ${fq(f.description)}`;
}

export function completionScript(shell: Shell): string {
  switch (shell) {
    case "bash":
      return bashCompletion();
    case "zsh":
      return zshCompletion();
    case "fish":
      return fishCompletion();
  }
}
