/**
 * Text that came from the guest and goes into a host message (an error, a
 * log line). The guest is untrusted: its words must not be able to move a
 * terminal's cursor, forge lines of our output or grow without bound, so
 * control characters are shown escaped and the length is capped.
 */

/** Longest guest text kept in a message, in characters. */
export const GUEST_TEXT_MAX = 512;

// C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a reader sees.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string): string => {
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
};

/** `text` with control characters escaped (\xNN, \uNNNN) and cut to `max` characters (marked with …). */
export function guestText(text: string, max = GUEST_TEXT_MAX): string {
  const chars = Array.from(text);
  const cut = chars.length > max;
  const kept = (cut ? chars.slice(0, max) : chars).join("").replace(UNSAFE, escape);
  return cut ? `${kept}…` : kept;
}

/** A guest-given error name: kept when it looks like one (ENOENT, EBUSY), else a placeholder. */
export function guestErrorName(name: string): string {
  return /^[A-Z][A-Z0-9_]{0,63}$/.test(name) ? name : "EGUEST";
}
