/**
 * `cairn completion bash|zsh`: a shell completion script for commands, subcommands and flags,
 * generated from the commander program itself (so it never drifts from the commands there are).
 *
 * The script holds three tables keyed by command path ("" for `cairn`, "volume", "volume ls"):
 * its subcommands, its flags, and the flags that take a value (whose value is not a command word).
 * Global options are offered everywhere. Where nothing fits (a path argument), the shell's own
 * file completion takes over.
 */
import { Command, type Option } from 'commander';
import { UsageError } from './output.js';

interface Node {
  path: string;
  subs: { name: string; description: string }[];
  flags: { flag: string; description: string }[];
  valued: string[];
}

function flagsOf(options: readonly Option[]): { flags: Node['flags']; valued: string[] } {
  const flags: Node['flags'] = [];
  const valued: string[] = [];
  for (const o of options) {
    if (o.hidden) continue;
    for (const f of [o.long, o.short]) {
      if (!f) continue;
      flags.push({ flag: f, description: o.description });
      if (o.required || o.optional) valued.push(f);
    }
  }
  return { flags, valued };
}

/** Every command path of `program`, depth first, with what completes after it. */
export function commandTree(program: Command): Node[] {
  // --version is the program's own; the other program options are global (accepted after a subcommand)
  const global = flagsOf(program.options.filter((o) => o.long !== '--version'));
  const version = flagsOf(program.options.filter((o) => o.long === '--version'));
  const help = { flag: '--help', description: 'show help' };
  const out: Node[] = [];
  const walk = (cmd: Command, path: string): void => {
    const own = cmd === program ? version : flagsOf(cmd.options);
    const subs = cmd.commands.map((c) => ({ name: c.name(), description: c.description() }));
    for (const c of cmd.commands) for (const a of c.aliases()) subs.push({ name: a, description: c.description() });
    if (cmd === program) subs.push({ name: 'help', description: 'show help for a command' });
    out.push({
      path,
      subs,
      flags: [...own.flags, ...global.flags, help],
      valued: [...own.valued, ...global.valued],
    });
    for (const c of cmd.commands) {
      const p = path ? `${path} ${c.name()}` : c.name();
      walk(c, p);
      for (const a of c.aliases()) walk(c, path ? `${path} ${a}` : a);
    }
  };
  walk(program, '');
  return out;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A shell `case` function printing one table entry per path. */
function caseFunction(name: string, nodes: Node[], value: (n: Node) => string[], sep = ' '): string {
  const arms = nodes
    .map((n) => ({ path: n.path, words: value(n) }))
    .filter((a) => a.words.length > 0)
    .map((a) => `    ${q(a.path)}) printf '%s\\n' ${q(a.words.join(sep))} ;;`);
  return `${name}() {\n  case "$1" in\n${arms.join('\n')}\n  esac\n}\n`;
}

/** The walk over the words before the cursor that finds the command path (same in bash and zsh). */
function pathFinder(words: string, first: number, current: string): string {
  return `  local cmdpath="" w prev="" i subs
  for ((i = ${first}; i < ${current}; i++)); do
    w=\${${words}[i]}
    if [[ $w != -* && -n $prev && " $(_cairn_valued "$cmdpath") " == *" $prev "* ]]; then prev=$w; continue; fi
    prev=$w
    [[ $w == -* ]] && continue
    subs=" $(_cairn_subs "$cmdpath") "
    if [[ $subs == *" $w "* ]]; then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done
`;
}

function tables(nodes: Node[]): string {
  return (
    caseFunction('_cairn_subs', nodes, (n) => n.subs.map((s) => s.name)) +
    caseFunction('_cairn_flags', nodes, (n) => n.flags.map((f) => f.flag)) +
    caseFunction('_cairn_valued', nodes, (n) => n.valued)
  );
}

export function bashScript(program: Command): string {
  const nodes = commandTree(program);
  return `# cairn completion for bash: eval "$(cairn completion bash)" (e.g. in ~/.bashrc)
${tables(nodes)}
_cairn() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
${pathFinder('COMP_WORDS', 1, 'COMP_CWORD')}  COMPREPLY=()
  # the value of a flag that takes one: leave it to the shell (files)
  if [[ -n $prev && " $(_cairn_valued "$cmdpath") " == *" $prev "* && $cur != -* ]]; then return 0; fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_cairn_flags "$cmdpath")" -- "$cur"))
  else
    subs=$(_cairn_subs "$cmdpath")
    [[ -n $subs ]] && COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  fi
  return 0
}
complete -o default -F _cairn cairn
`;
}

export function zshScript(program: Command): string {
  const nodes = commandTree(program);
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:').replace(/\n/g, ' ');
  const described = (name: string, value: (n: Node) => { k: string; d: string }[]) =>
    caseFunction(name, nodes, (n) => value(n).map(({ k, d }) => `${esc(k)}:${esc(d)}`), '\n');
  const subsDescribed = described('_cairn_subs_described', (n) => n.subs.map((s) => ({ k: s.name, d: s.description })));
  const flagsDescribed = described('_cairn_flags_described', (n) => n.flags.map((f) => ({ k: f.flag, d: f.description })));
  const valued = '[[ -n $prev && " $(_cairn_valued "$cmdpath") " == *" $prev "* && $cur != -* ]]';
  return `#compdef cairn
# cairn completion for zsh: eval "$(cairn completion zsh)" after compinit (e.g. in ~/.zshrc),
# or save it as _cairn in a directory of $fpath
${tables(nodes)}${subsDescribed}${flagsDescribed}
_cairn() {
  local cur=\${words[CURRENT]}
${pathFinder('words', 2, 'CURRENT')}  if ${valued}; then _files; return; fi
  local -a items
  if [[ $cur == -* ]]; then
    items=("\${(@f)$(_cairn_flags_described "$cmdpath")}")
    _describe -t flags 'flag' items
  else
    items=("\${(@f)$(_cairn_subs_described "$cmdpath")}")
    if [[ -n \${items[1]} ]]; then _describe -t commands 'command' items; else _files; fi
  fi
}
compdef _cairn cairn
`;
}

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion <shell>')
    .description('print a completion script for bash or zsh (commands, subcommands, flags)')
    .addHelpText(
      'after',
      '\nExamples:\n  eval "$(cairn completion bash)"      # in ~/.bashrc' +
        '\n  eval "$(cairn completion zsh)"       # in ~/.zshrc, after compinit' +
        '\n  cairn completion bash > /etc/bash_completion.d/cairn',
    )
    .action((shell: string) => {
      if (shell === 'bash') return void process.stdout.write(bashScript(program));
      if (shell === 'zsh') return void process.stdout.write(zshScript(program));
      throw new UsageError(`cairn completion supports bash and zsh, not ${JSON.stringify(shell)}`);
    });
}
