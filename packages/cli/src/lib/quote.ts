/** POSIX shell quoting: turns an argv back into one command string for `sh -c`. */

/** Words made only of these characters mean the same quoted or not (no `=`: `A=1 cmd` would be an assignment). */
const SAFE = /^[A-Za-z0-9_\/.,:@%+-]+$/;

/** One word, single-quoted unless it is plainly safe. */
export function quoteWord(word: string): string {
  if (SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An argv as one shell command line that runs exactly that argv. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map(quoteWord).join(" ");
}
