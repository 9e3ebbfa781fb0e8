/**
 * JSON text safe to place in an HTML page: `<`, `>`, `&`, U+2028 and U+2029
 * are written as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`, as Go's
 * encoding/json does. It is the same JSON value (these characters occur in
 * JSON text only inside strings, where the escape means the same character),
 * but a page that inserts a frame with innerHTML, or a script that embeds one,
 * cannot be made to run a publisher's `<img onerror=...>` or `</script>`.
 */

const TEST = /[<>&\u2028\u2029]/;
const UNSAFE = /[<>&\u2028\u2029]/g;
const ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/** Escapes the HTML-sensitive characters of a JSON text (which must be valid JSON). */
export function escapeJsonText(text: string): string {
  return TEST.test(text) ? text.replace(UNSAFE, (char) => ESCAPES[char]!) : text;
}

/** `JSON.stringify` with the HTML-sensitive characters escaped; undefined where JSON.stringify gives undefined. Throws as JSON.stringify does. */
export function toJson(value: unknown): string {
  const text = JSON.stringify(value) as string | undefined;
  return (text === undefined ? undefined : escapeJsonText(text)) as string;
}
