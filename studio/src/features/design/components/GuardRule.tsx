// A guard's rule in the transition panel: as rules and groups (react-querybuilder) when the
// builder can show it exactly, else as JSON-Logic, with a switch between the two (the rules view
// only while the rule is expressible: `lib/guardQuery.ts`). Loaded lazily with the builder.

import { useId, useMemo, useState } from 'react';
import { expressible, guardFields } from '../lib/guardQuery';
import type { PackageJson, TransitionJson, TypeJson } from '../lib/model';
import GuardQueryEditor from './GuardQueryEditor';
import { JsonField } from './JsonField';

/**
 * A guard's rule, as rules and groups (react-querybuilder) when the builder can show it exactly,
 * else as JSON-Logic; the admin switches between the two (the rules view only while the rule is
 * expressible).
 */
export default function GuardRule({
  n,
  rule,
  pkg,
  type,
  transition,
  onChange,
}: {
  n: string;
  rule: unknown;
  pkg: PackageJson;
  type: TypeJson;
  transition: TransitionJson;
  onChange: (rule: unknown) => void;
}) {
  const id = useId();
  const canShow = useMemo(() => expressible(rule), [rule]);
  const [mode, setMode] = useState<'rules' | 'json'>(canShow ? 'rules' : 'json');
  const fields = useMemo(() => guardFields(pkg, type, transition), [pkg, type, transition]);
  const visual = mode === 'rules' && canShow;
  return (
    <div className="guard-rule">
      <div className="row" role="radiogroup" aria-label={`Guard ${n} edited as`}>
        <label className="check">
          <input
            type="radio"
            name={`${id}-mode`}
            checked={visual}
            disabled={!canShow}
            onChange={() => {
              setMode('rules');
            }}
          />
          Rules
        </label>
        <label className="check">
          <input
            type="radio"
            name={`${id}-mode`}
            checked={!visual}
            onChange={() => {
              setMode('json');
            }}
          />
          JSON-Logic
        </label>
      </div>
      {canShow ? null : (
        <p className="muted">
          The rules view cannot show this guard exactly (iteration, arithmetic or another operator it lacks): it is edited as
          JSON-Logic.
        </p>
      )}
      {visual ? (
        <GuardQueryEditor label={`Guard ${n} rules`} rule={rule} fields={fields} onChange={onChange} />
      ) : (
        <JsonField label={`Guard ${n} rule (JSON-Logic)`} value={rule} rows={2} onChange={onChange} />
      )}
    </div>
  );
}

