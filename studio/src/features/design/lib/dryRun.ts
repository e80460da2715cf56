// Reading the answer of a dry run (`POST …/config/draft/dry-run`) for display: the outcome, the
// guards with their values, every entity changed or created as a field-by-field diff, and the
// events. Read defensively: a missing part is shown as none, never as a crash.

export interface GuardLine {
  message: string;
  passed: boolean;
  values: string | null;
}

export interface FieldChange {
  field: string;
  before: string;
  after: string;
}

export interface EntityChange {
  type: string;
  id: string;
  created: boolean;
  fields: FieldChange[];
}

export interface DryRunView {
  applied: boolean;
  message: string | null;
  guards: GuardLine[];
  changes: EntityChange[];
  events: string[];
  followUps: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const text = (v: unknown): string => (v === undefined ? '—' : JSON.stringify(v));

/** The fields (and state) that differ between two entity JSONs, in the order they appear. */
export function diffEntity(before: unknown, after: unknown): FieldChange[] {
  const b = isRecord(before) ? before : {};
  const a = isRecord(after) ? after : {};
  const bData = isRecord(b.data) ? b.data : {};
  const aData = isRecord(a.data) ? a.data : {};
  const out: FieldChange[] = [];
  if (b.state !== a.state) out.push({ field: 'state', before: text(b.state), after: text(a.state) });
  const keys = [...new Set([...Object.keys(aData), ...Object.keys(bData)])];
  for (const k of keys) {
    const x = text(bData[k]);
    const y = text(aData[k]);
    if (x !== y) out.push({ field: k, before: x, after: y });
  }
  return out;
}

function guardLine(g: unknown): GuardLine | null {
  if (!isRecord(g)) return null;
  const message = typeof g.message === 'string' ? g.message : '';
  const passed = g.passed === true || g.result === true || g.ok === true;
  const raw = g.values ?? g.vars ?? g.value;
  return { message, passed, values: raw === undefined ? null : valuesText(raw) };
}

/** What a guard read, as a person reads it: `entity.total_amount = 650, customer.tier = "gold"`. */
function valuesText(raw: unknown): string {
  if (!isRecord(raw)) return JSON.stringify(raw);
  return Object.entries(raw)
    .map(([path, v]) => `${path} = ${JSON.stringify(v)}`)
    .join(', ');
}

export function readDryRun(answer: unknown): DryRunView {
  const r = isRecord(answer) ? answer : {};
  const rejection = isRecord(r.rejection) ? r.rejection : null;
  const changes = list(r.changes).flatMap((c): EntityChange[] => {
    if (!isRecord(c)) return [];
    const after = isRecord(c.after) ? c.after : {};
    return [
      {
        type: typeof c.type === 'string' ? c.type : typeof after.type === 'string' ? after.type : '',
        id: typeof c.id === 'string' ? c.id : typeof after.id === 'string' ? after.id : '',
        created: c.created === true,
        fields: diffEntity(c.before, c.after),
      },
    ];
  });
  const names = (v: unknown): string[] =>
    list(v).flatMap((e) => {
      if (typeof e === 'string') return [e];
      if (!isRecord(e)) return [];
      const name = e.name ?? e.event ?? e.type ?? e.transition;
      return typeof name === 'string' ? [name] : [];
    });
  return {
    applied: r.outcome === 'applied',
    message: rejection && typeof rejection.message === 'string' ? rejection.message : null,
    guards: list(r.guards).flatMap((g) => {
      const line = guardLine(g);
      return line ? [line] : [];
    }),
    changes,
    events: names(r.events),
    followUps: names(r.follow_ups),
  };
}
