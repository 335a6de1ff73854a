import { describe, expect, it } from "vitest";
import { GUEST_TEXT_MAX, guestErrorName, guestText } from "./guest-text.js";

describe("guest text in host messages", () => {
  it("keeps plain text, including non-ASCII letters", () => {
    expect(guestText("chdir /tmp/x: no such file")).toBe("chdir /tmp/x: no such file");
    expect(guestText("fichier introuvable: été")).toBe("fichier introuvable: été");
  });

  it("escapes newlines, escape sequences, DEL, C1 controls and bidi overrides", () => {
    expect(guestText("a\nb\r\tc")).toBe("a\\x0ab\\x0d\\x09c");
    expect(guestText("\u001b[2J\u001b]0;pwned\u0007")).toBe("\\x1b[2J\\x1b]0;pwned\\x07");
    expect(guestText("x\u007fy\u009bz")).toBe("x\\x7fy\\x9bz");
    expect(guestText("abc\u202edcba")).toBe("abc\\u202edcba");
  });

  it("caps the length and marks the cut", () => {
    const long = "x".repeat(GUEST_TEXT_MAX + 10);
    expect(guestText(long)).toBe(`${"x".repeat(GUEST_TEXT_MAX)}…`);
    expect(guestText("abcdef", 3)).toBe("abc…");
    // Characters, not UTF-16 units: a surrogate pair is never split.
    expect(guestText("😀😀😀", 2)).toBe("😀😀…");
  });

  it("keeps error names that look like errno names, replaces the rest", () => {
    expect(guestErrorName("ENOENT")).toBe("ENOENT");
    expect(guestErrorName("E2BIG")).toBe("E2BIG");
    expect(guestErrorName("bad\nname")).toBe("EGUEST");
    expect(guestErrorName("")).toBe("EGUEST");
    expect(guestErrorName("E".repeat(65))).toBe("EGUEST");
  });
});
