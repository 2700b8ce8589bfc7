// YAML parsing that remembers where every value came from, so each validation problem can name
// its file:line. js-yaml reports node open/close events to a listener; nesting them rebuilds the
// node tree with line numbers.
import yaml from "js-yaml";

export type PathSegment = string | number;

export interface ParsedYaml {
  value: unknown;
  /** 1-based line of the value at `path`, or of its nearest ancestor that has one. */
  lineOf(path: readonly PathSegment[]): number | undefined;
}

export class YamlSyntaxError extends Error {
  override name = "YamlSyntaxError";
  constructor(
    message: string,
    readonly line: number | undefined,
  ) {
    super(message);
  }
}

interface Frame {
  line: number;
  children: ParsedNode[];
}

interface ParsedNode {
  line: number;
  kind: string | null;
  result: unknown;
  children: ParsedNode[];
}

export function pointer(path: readonly PathSegment[]): string {
  return path.map((segment) => `/${segment}`).join("");
}

/** `spec.hosts[1].address`, the way users read YAML paths. */
export function formatPath(path: readonly PathSegment[]): string {
  return path
    .map((segment, index) => {
      if (typeof segment === "number") return `[${segment}]`;
      const plain = /^[A-Za-z0-9_-]+$/.test(segment);
      const text = plain ? segment : JSON.stringify(segment);
      return index === 0 ? text : `.${text}`;
    })
    .join("");
}

export function parseYaml(text: string): ParsedYaml {
  const stack: Frame[] = [{ line: 0, children: [] }];
  let value: unknown;
  try {
    value = yaml.load(text, {
      schema: yaml.CORE_SCHEMA,
      listener(event, state) {
        if (event === "open") {
          stack.push({ line: state.line, children: [] });
          return;
        }
        const frame = stack.pop();
        if (!frame) return;
        const node: ParsedNode = {
          line: frame.line,
          kind: state.kind,
          result: state.result,
          children: frame.children,
        };
        // A block sequence entry opens a wrapper node around its value: keep the inner one.
        const only = frame.children.length === 1 ? frame.children[0] : undefined;
        stack
          .at(-1)
          ?.children.push(only && only.result === node.result ? { ...only, line: frame.line } : node);
      },
    });
  } catch (error) {
    if (error instanceof yaml.YAMLException) {
      const line = error.mark ? error.mark.line + 1 : undefined;
      throw new YamlSyntaxError(`invalid YAML: ${error.reason}`, line);
    }
    throw error;
  }
  const lines = new Map<string, number>();
  const root = stack[0]?.children.at(-1);
  if (root) indexLines(root, [], lines);
  return {
    value,
    lineOf(path) {
      for (let length = path.length; length >= 0; length--) {
        const line = lines.get(pointer(path.slice(0, length)));
        if (line !== undefined) return line;
      }
      return undefined;
    },
  };
}

function indexLines(node: ParsedNode, path: PathSegment[], lines: Map<string, number>): void {
  if (!lines.has(pointer(path))) lines.set(pointer(path), node.line + 1);
  if (node.kind === "mapping" && node.children.length % 2 === 0) {
    for (let i = 0; i < node.children.length; i += 2) {
      const key = node.children[i];
      const child = node.children[i + 1];
      if (!key || !child) continue;
      const childPath = [...path, String(key.result)];
      // A key's own line is where users look, also when its value is a nested block.
      lines.set(pointer(childPath), key.line + 1);
      indexLines(child, childPath, lines);
    }
  } else if (node.kind === "sequence") {
    node.children.forEach((child, index) => {
      indexLines(child, [...path, index], lines);
    });
  }
}
