import { describe, expect, it } from "vitest";
import { ReportReader } from "./vmm-report.js";

describe("VMM report parsing", () => {
  it("folds well-formed events split across chunks and ignores garbage", () => {
    const r = new ReportReader();
    r.push(Buffer.from('{"event":"milestone","id":1,"ms":812.5}\n{"event":"exi'));
    r.push(Buffer.from('t","reason":"guest","status":3}\nnot json\n{"event":"milestone","id":"x"}\n'));
    r.push(Buffer.from('{"event":"stats","wallMs":900,"inKvmRunMs":880,"outsideKvmRunMs":20,"exits":{"io":12}}'));
    r.end();
    expect(r.report.milestones).toEqual([{ id: 1, ms: 812.5 }]);
    expect(r.report.exit).toEqual({ reason: "guest", status: 3 });
    expect(r.report.stats?.exits).toEqual({ io: 12 });
    expect(r.report.error).toBeUndefined();
  });

  it("reads the vmstate events: restored, snapshot, exit reason snapshot (docs/vmstate.md)", () => {
    const r = new ReportReader();
    r.push(Buffer.from('{"event":"restored","ms":41.5}\n{"event":"snapshot","ok":false,"dir":"/s","error":"disk full"}\n'));
    r.push(Buffer.from('{"event":"snapshot","ok":true,"dir":"/t"}\n{"event":"exit","reason":"snapshot","status":0}\n'));
    r.end();
    expect(r.report.restored).toEqual({ ms: 41.5 });
    expect(r.report.snapshots).toEqual([{ ok: false, dir: "/s", error: "disk full" }, { ok: true, dir: "/t" }]);
    expect(r.report.exit).toEqual({ reason: "snapshot", status: 0 });
  });
});
