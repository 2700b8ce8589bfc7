import { describe, expect, it } from "vitest";
import { UsageError } from "./errors.js";
import { describePhases, flattenPhases, type Phase } from "./phase.js";
import { isVisited, selectPhases } from "./select.js";

const noop = async () => {};
// The shape of kubeadm init's tree, enough to pin down the selection rules.
const tree: Phase<void>[] = [
  { id: "preflight", title: "Run preflight checks", run: noop },
  {
    id: "certs",
    title: "Generate certificates",
    phases: [
      { id: "ca", title: "Generate the CA", run: noop },
      { id: "apiserver", title: "Generate the API server certificate", run: noop },
    ],
  },
  {
    id: "addon",
    title: "Install add-ons",
    phases: [{ id: "kube-proxy", title: "Install kube-proxy", run: noop }],
  },
];
const flat = flattenPhases(tree);

describe("phase selection", () => {
  it("runs every phase when nothing is selected or skipped", () => {
    const { runs, skipped } = selectPhases(flat, [], []);
    expect([...runs]).toEqual([
      "preflight",
      "certs",
      "certs/ca",
      "certs/apiserver",
      "addon",
      "addon/kube-proxy",
    ]);
    expect(skipped.size).toBe(0);
  });

  it("selecting a parent selects its descendants, and only those", () => {
    const { runs } = selectPhases(flat, ["certs"], []);
    expect([...runs]).toEqual(["certs", "certs/ca", "certs/apiserver"]);
  });

  it("selecting a child runs the child alone; its parent is only entered", () => {
    const selection = selectPhases(flat, ["certs/apiserver"], []);
    expect([...selection.runs]).toEqual(["certs/apiserver"]);
    expect(isVisited(selection, "certs")).toBe(true);
    expect(isVisited(selection, "preflight")).toBe(false);
  });

  it("skipping a parent skips its descendants", () => {
    const { runs, skipped } = selectPhases(flat, [], ["certs"]);
    expect([...skipped]).toEqual(["certs", "certs/ca", "certs/apiserver"]);
    expect(runs.has("certs/ca")).toBe(false);
  });

  it("runs prerequisites (read-only groundwork) with any selection, and refuses to skip them", () => {
    const withFacts = flattenPhases<void, { name: string }>([
      { id: "facts", title: "Gather facts", run: noop, prerequisite: true },
      ...tree,
    ]);
    expect([...selectPhases(withFacts, ["certs/ca"], []).runs]).toEqual(["certs/ca", "facts"]);
    expect([...selectPhases(withFacts, [], ["certs"]).runs]).toEqual([
      "facts",
      "preflight",
      "addon",
      "addon/kube-proxy",
    ]);
    expect(() => selectPhases(withFacts, [], ["facts"])).toThrow(
      new UsageError('phase "facts" cannot be skipped: the other phases stand on it'),
    );
  });

  it("skip beats select", () => {
    const { runs, skipped } = selectPhases(flat, ["certs"], ["certs/ca"]);
    expect([...runs]).toEqual(["certs", "certs/apiserver"]);
    expect([...skipped]).toEqual(["certs/ca"]);
  });

  it.each([
    [["cert"], []],
    [[], ["addon/coredns"]],
    [["certs/"], []],
  ])("rejects unknown names (select %j, skip %j) with the list of phases", (select, skip) => {
    expect(() => selectPhases(flat, select, skip)).toThrow(UsageError);
    expect(() => selectPhases(flat, select, skip)).toThrow(
      /unknown phase .*; phases are: preflight, certs, certs\/ca/,
    );
  });
});

describe("phase tree", () => {
  it("gives every phase a /-joined path", () => {
    expect(flat.map((p) => [p.path, p.depth])).toEqual([
      ["preflight", 0],
      ["certs", 0],
      ["certs/ca", 1],
      ["certs/apiserver", 1],
      ["addon", 0],
      ["addon/kube-proxy", 1],
    ]);
  });

  it("prints the indented tree for --help", () => {
    expect(describePhases(tree)).toBe(
      [
        "  preflight     Run preflight checks",
        "  certs         Generate certificates",
        "    ca          Generate the CA",
        "    apiserver   Generate the API server certificate",
        "  addon         Install add-ons",
        "    kube-proxy  Install kube-proxy",
      ].join("\n"),
    );
  });

  it("rejects ids that are not kebab-case or appear twice among siblings", () => {
    expect(() => flattenPhases([{ id: "Certs", title: "x" }])).toThrow(/not kebab-case/);
    expect(() =>
      flattenPhases([
        { id: "a", title: "x" },
        { id: "a", title: "y" },
      ]),
    ).toThrow(/appears twice/);
  });
});
