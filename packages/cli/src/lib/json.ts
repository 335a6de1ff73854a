/**
 * The text of one JSON document as the CLI prints it: pretty, two spaces.
 * The completion scripts rely on this: in `list --json`, an entry's own
 * keys are the only ones indented by exactly four spaces.
 */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
