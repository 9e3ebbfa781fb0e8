/**
 * URL path patterns of the configuration (`lhttp.paths`, `raw[].path`): a
 * pattern is an exact path (`/echo`), or a prefix ending in `*` (`/chat/*`
 * matches `/chat/` and `/chat/room-1`; `/*` matches every path). The same
 * rule as topic patterns. The query string is not part of the path.
 */
export class PathPatterns {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];

  constructor(patterns: readonly string[]) {
    for (const pattern of patterns) {
      if (pattern.endsWith('*')) this.prefixes.push(pattern.slice(0, -1));
      else this.exact.add(pattern);
    }
  }

  /** Whether `path` matches one of the patterns. */
  matches(path: string): boolean {
    if (this.exact.has(path)) return true;
    for (const prefix of this.prefixes) if (path.startsWith(prefix)) return true;
    return false;
  }
}

/** Why a path pattern is not acceptable, or null: it starts with `/`, and `*` may only end it. */
export function pathPatternProblem(pattern: string): string | null {
  if (!pattern.startsWith('/')) return `path ${JSON.stringify(pattern)} must start with "/"`;
  const star = pattern.indexOf('*');
  if (star !== -1 && star !== pattern.length - 1) return `path ${JSON.stringify(pattern)}: "*" may only end a pattern (e.g. "/chat/*")`;
  if (/[\s?#]/.test(pattern)) return `path ${JSON.stringify(pattern)} must not contain spaces, "?" or "#"`;
  return null;
}
