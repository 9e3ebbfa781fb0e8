import type { z } from 'zod';

/** One line for the first problem zod found: `field "topic": Invalid input: expected string, received number`. */
export function describeIssue(error: z.ZodError, prefix = ''): string {
  const issue = error.issues[0]!;
  const field = issue.path.join('.');
  return `${prefix}${field ? `field "${field}": ` : ''}${issue.message}`;
}
