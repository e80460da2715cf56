// Why a transition cannot be fired now, in a sentence, from the API's explanation
// (`GET …/transitions`): the missing role, four-eyes, or the first failing guard's message.

export interface Explained {
  allowed: boolean;
  role_allowed: boolean;
  roles: string[];
  guards: Record<string, unknown>[];
  reason?: string;
}

export function reasonText(t: Explained): string | null {
  if (t.allowed) return null;
  if (!t.role_allowed) return `Only ${t.roles.join(', ')} may do this.`;
  const failing = t.guards.find((g) => g.passed === false || g.result === false);
  const message = failing && typeof failing.message === 'string' ? failing.message : null;
  if (t.reason === 'four_eyes') return message ?? 'Someone else must do this (four-eyes).';
  if (message) return message;
  if (t.reason === 'load') return 'What it needs could not be loaded.';
  return 'Not possible now.';
}
