// A form generated from a JSON Schema with @rjsf/core, themed by the app's CSS: text buttons
// instead of icon fonts, references as pickers showing titles, user fields as pickers of the
// tenant's users having the field's role (by name), no client-side validation (the
// CSP refuses the `eval` ajv needs; the server's field errors are shown at their fields).

import Form from '@rjsf/core';
import type { ErrorSchema, IconButtonProps, RegistryWidgetsType, RJSFSchema, TitleFieldProps, UiSchema, WidgetProps } from '@rjsf/utils';
import { useQuery } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { useParams } from 'react-router';
import { entityName } from '../../../lib/entityName';
import { referenceOptionsQuery, userChoicesQuery } from '../api/entities';
import { itemTitle, serverSideValidator } from '../lib/forms';

function textButton(text: string) {
  return function TextButton(props: IconButtonProps) {
    // Only the handler, state and title: not rjsf's icon props nor its inline styles.
    return (
      <button
        type="button"
        className={`secondary small ${props.className ?? ''}`}
        onClick={props.onClick}
        disabled={props.disabled}
        title={props.title}
      >
        {text}
      </button>
    );
  };
}

/** A select of `choices` (id and label) for an id-valued field: empty is no value, and a value
 * not among the choices (not loaded, or no longer offered) stays shown as itself. */
function ChoiceSelect({
  props,
  choices,
  pending,
}: {
  props: WidgetProps;
  choices: { id: string; label: string }[] | undefined;
  pending: boolean;
}) {
  const value = typeof props.value === 'string' ? props.value : '';
  const known = choices?.some((c) => c.id === value) ?? false;
  return (
    <select
      id={props.id}
      value={value}
      required={props.required}
      disabled={props.disabled || props.readonly}
      aria-busy={pending}
      onChange={(e) => {
        props.onChange(e.target.value === '' ? undefined : e.target.value);
      }}
      onBlur={() => {
        props.onBlur(props.id, value);
      }}
      onFocus={() => {
        props.onFocus(props.id, value);
      }}
    >
      <option value="">{pending ? 'Loading…' : '— choose —'}</option>
      {value && !known ? <option value={value}>{value}</option> : null}
      {(choices ?? []).map((c) => (
        <option key={c.id} value={c.id}>
          {c.label}
        </option>
      ))}
    </select>
  );
}

/** A reference (`x-reference: type`) as a select of that type's entities, by title. */
function ReferenceWidget(props: WidgetProps) {
  const tenant = useParams().tenant ?? '';
  const to = typeof props.schema['x-reference'] === 'string' ? props.schema['x-reference'] : '';
  const options = useQuery(referenceOptionsQuery(tenant, to));
  const choices = options.data?.map((e) => ({ id: e.id, label: entityName(e) }));
  return <ChoiceSelect props={props} choices={choices} pending={options.isPending} />;
}

/** The role a user field asks for (`x-user: {role}`), or null for any user. */
function userRole(schema: unknown): string | null {
  if (typeof schema !== 'object' || schema === null) return null;
  const x = (schema as Record<string, unknown>)['x-user'];
  if (typeof x !== 'object' || x === null) return null;
  const role = (x as Record<string, unknown>).role;
  return typeof role === 'string' ? role : null;
}

/** A user field (`x-user: {role}`) as a select of the active users having the role, by name. */
function UserWidget(props: WidgetProps) {
  const tenant = useParams().tenant ?? '';
  const options = useQuery(userChoicesQuery(tenant, userRole(props.schema)));
  const choices = options.data?.map((u) => ({ id: u.id, label: u.name ? `${u.name} (${u.email})` : u.email }));
  return <ChoiceSelect props={props} choices={choices} pending={options.isPending} />;
}

const widgets: RegistryWidgetsType = { reference: ReferenceWidget, user: UserWidget };

/** rjsf's title (a legend), with an array item's title readable: "Line item 1", not "Line items-1". */
function TitleFieldTemplate({ id, title, required }: TitleFieldProps) {
  return (
    <legend id={id}>
      {itemTitle(id, title)}
      {required ? <span className="required">*</span> : null}
    </legend>
  );
}

const templates = {
  TitleFieldTemplate,
  ButtonTemplates: {
    AddButton: textButton('Add'),
    RemoveButton: textButton('Remove'),
    MoveUpButton: textButton('Up'),
    MoveDownButton: textButton('Down'),
    CopyButton: textButton('Copy'),
  },
};

export interface SchemaFormProps {
  /** Unique per page: the ids of the form's fields start with it. */
  idPrefix: string;
  schema: RJSFSchema;
  uiSchema?: UiSchema;
  formData: unknown;
  onChange: (data: unknown) => void;
  onSubmit: () => void;
  /** The server's field errors ([`serverErrors`]). */
  errors?: ErrorSchema;
  disabled?: boolean;
  /** The submit button (and anything beside it). */
  children: ReactNode;
}

export function SchemaForm(props: SchemaFormProps) {
  return (
    <Form
      className="schema-form"
      idPrefix={props.idPrefix}
      schema={props.schema}
      uiSchema={{ 'ui:submitButtonOptions': { norender: true }, ...props.uiSchema }}
      formData={props.formData}
      validator={serverSideValidator}
      noHtml5Validate
      showErrorList={false}
      extraErrors={props.errors}
      disabled={props.disabled}
      widgets={widgets}
      templates={templates}
      onChange={(e) => {
        props.onChange(e.formData);
      }}
      onSubmit={() => {
        props.onSubmit();
      }}
    >
      {props.children}
    </Form>
  );
}
