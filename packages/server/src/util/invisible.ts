/**
 * Control and format characters (Unicode categories Cc and Cf: NUL, ESC,
 * U+0085, bidirectional overrides, zero-width ones, the BOM) and the line
 * and paragraph separators (U+2028, U+2029), which a tag name, a tag value
 * or an event name never holds (`tagsProblem`, `eventProblem`, the filter
 * compiler): they would travel into every frame, log line and Pusher client
 * unseen.
 */
export const INVISIBLE = /[\p{Cc}\p{Cf}\u2028\u2029]/u;
