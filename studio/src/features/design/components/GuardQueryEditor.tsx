// A guard's rule edited as rules and groups with react-querybuilder (loaded with the transition
// panel's guards, not in the initial bundle). The builder renders plain elements with class names
// (no inline style or script, so the CSP holds) styled by the studio's own sheet. The query is
// kept here while the admin edits (the library gives each rule an id; a query rebuilt from the
// rule on every keystroke would remount the inputs), and rebuilt when the rule changes from
// elsewhere (undo, the JSON view).

import { useMemo, useState } from 'react';
import {
  defaultOperators,
  QueryBuilder,
  toOptions,
  useValueSelector,
  ValueEditor,
  type ValueEditorProps,
  type ValueSelectorProps,
  type Field,
  type FullOperator,
  type RuleGroupType,
  type Translations,
} from 'react-querybuilder';
import { EXTRA_OPERATORS, fromQuery, isNamedRule, RULE_OPERATORS, toQuery, withQueryFields } from '../lib/guardQuery';

export interface GuardQueryEditorProps {
  /** The accessible name of the whole builder, e.g. "Guard 1 rules". */
  label: string;
  rule: unknown;
  fields: Field[];
  onChange: (rule: unknown) => void;
}

// Comparisons and membership: the operators whose JSON-Logic the engine evaluates (the library's
// `startsWith`/`endsWith` are not JSON-Logic's own, so they are left out).
// Nor `between`: its two boxes would share one name.
const COMPARISONS = new Set(['=', '!=', '<', '<=', '>', '>=', 'in', 'notIn', 'contains', 'doesNotContain', 'null', 'notNull']);
const UNARY = new Set(['null', 'notNull', ...EXTRA_OPERATORS.map((o) => o.name), ...RULE_OPERATORS.map((o) => o.name)]);

// The library names its controls by `title` only, which is no label (axe: label-title-only).
// These give each control an accessible name: a select its `aria-label`, the value's box a label.
function NamedSelector(props: ValueSelectorProps) {
  const { onChange, val } = useValueSelector(props);
  return (
    <select
      aria-label={props.title}
      title={props.title}
      className={props.className}
      value={val as string}
      disabled={props.disabled}
      onChange={(e) => {
        onChange(e.target.value);
      }}
    >
      {toOptions(props.options)}
    </select>
  );
}

function NamedValueEditor(props: ValueEditorProps) {
  if (UNARY.has(props.operator)) return null;
  return (
    <label className="qb-value">
      <span className="sr-only">{props.title}</span>
      <ValueEditor {...props} />
    </label>
  );
}
// "is set", "holds", …: no value to compare with (`arity: 'unary'` hides the value's box).
const VALUE_OPERATORS: FullOperator[] = [
  ...defaultOperators.filter((o) => COMPARISONS.has(o.name)),
  ...EXTRA_OPERATORS.map((o) => ({ ...o, arity: 'unary' as const })),
].map((o) => ({ ...o, value: o.name }));
const NAMED_RULE_OPERATORS: FullOperator[] = RULE_OPERATORS.map((o) => ({ ...o, arity: 'unary' as const }));

const translations: Partial<Translations> = {
  addRule: { label: 'Add condition', title: 'Add a condition' },
  addGroup: { label: 'Add group', title: 'Add a group of conditions' },
  removeRule: { label: 'Remove condition', title: 'Remove this condition' },
  removeGroup: { label: 'Remove group', title: 'Remove this group' },
  fields: { title: 'Value read' },
  operators: { title: 'Operator' },
  value: { title: 'Compared with' },
  combinators: { title: 'Combine with' },
  notToggle: { label: 'Not', title: 'Negate the group' },
  valueSourceSelector: { title: 'Compared with a value or another field' },
};

const empty: RuleGroupType = { combinator: 'and', rules: [] };

export default function GuardQueryEditor({ label, rule, fields, onChange }: GuardQueryEditorProps) {
  const text = JSON.stringify(rule);
  // The query, and the rule's text it was built from or last wrote: another text means the rule
  // changed elsewhere.
  const [state, setState] = useState(() => ({ text, query: toQuery(rule) ?? empty }));
  if (state.text !== text) setState({ text, query: toQuery(rule) ?? empty });
  const offered = useMemo(() => withQueryFields(fields, state.query), [fields, state.query]);
  return (
    <div role="group" aria-label={label} className="guard-query">
      <QueryBuilder
        fields={offered}
        query={state.query}
        onQueryChange={(query: RuleGroupType) => {
          const next = fromQuery(query);
          const nextText = JSON.stringify(next);
          setState({ text: nextText, query });
          if (nextText !== text) onChange(next);
        }}
        getOperators={(field) => (isNamedRule(field) ? NAMED_RULE_OPERATORS : VALUE_OPERATORS)}
        getValueSources={(field) => (isNamedRule(field) ? ['value'] : ['value', 'field'])}
        controlElements={{ valueSelector: NamedSelector, valueEditor: NamedValueEditor }}
        showNotToggle
        parseNumbers="strict-limited"
        translations={translations}
        controlClassnames={{ queryBuilder: 'qb', ruleGroup: 'qb-group', rule: 'qb-rule' }}
      />
    </div>
  );
}
