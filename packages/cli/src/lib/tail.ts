/** The last `n` lines of a text (bytes, so multi-byte characters are never split). */
export function tailLines(data: Buffer, n: number): Buffer {
  if (n <= 0) return Buffer.alloc(0);
  // A final newline ends the last line; it does not start an empty one.
  let end = data.length;
  if (end > 0 && data[end - 1] === 0x0a) end--;
  let start = end;
  let seen = 0;
  while (start > 0) {
    const nl = data.lastIndexOf(0x0a, start - 1);
    if (nl < 0) {
      start = 0;
      break;
    }
    seen++;
    if (seen === n) {
      start = nl + 1;
      break;
    }
    start = nl;
  }
  return data.subarray(start);
}
