/**
 * Test support: reading the processes' log lines as a strict log pipeline
 * would. `JSON.parse` keeps the last of two equal keys without a word, so
 * lines go through a small JSON parser of its own that refuses a key an
 * object already has (log stores that index raw JSON refuse such lines).
 */

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/** Parses one JSON text; throws on a syntax error or on a key repeated within one object. */
export function parseStrictJson(text: string): unknown {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at ${i} in ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const string = (): string => {
    const start = i;
    i++; // the opening quote
    for (;;) {
      const c = text[i];
      if (c === undefined) fail('unterminated string');
      if (c === '"') break;
      i += c === '\\' ? 2 : 1;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return out;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        if (seen.has(key)) fail(`key "${key}" appears twice`);
        seen.add(key);
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        out[key] = value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return out;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return out;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return string();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 64));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    return JSON.parse(m[0]) as unknown;
  };
  const out = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return out;
}

/**
 * What is wrong with the log lines in `output` (one process's stdout): a
 * line that is not one JSON object, has a key twice, or whose `level` is
 * not a level's name. Empty when every line is fine.
 */
export function logLineProblems(output: string): string[] {
  const problems: string[] = [];
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const parsed = parseStrictJson(line);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error(`not an object: ${line}`);
      const level = (parsed as { level?: unknown }).level;
      if (typeof level !== 'string' || !LEVELS.has(level)) throw new Error(`level ${JSON.stringify(level)}: ${line}`);
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  return problems;
}
