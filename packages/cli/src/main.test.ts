import { describe, expect, it } from "vitest";
import { handlers } from "./main.js";
import { commands } from "./parse/schema.js";

describe("dispatch", () => {
  it("has a handler for every schema command and nothing else", () => {
    expect(Object.keys(handlers).sort()).toEqual(commands.map((c) => c.name).sort());
  });
});
