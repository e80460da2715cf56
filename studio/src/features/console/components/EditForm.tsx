import type { ErrorSchema } from '@rjsf/utils';
import { useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { Alert } from '../../../components/Alert';
import { ApiError, errorMessage } from '../../../lib/envelope';
import { patchEntity } from '../api/entities';
import { editSchema, mergePatch, pick, rebase, serverErrors, uiSchemaFor } from '../lib/forms';
import { SchemaForm } from './SchemaForm';

interface Props {
  tenant: string;
  type: string;
  label: string;
  schema: unknown;
  fields: string[];
  entity: { id: string; version: number; data: Record<string, unknown> };
  /** Asks the server for the entity again (after a conflict). */
  reload: () => Promise<unknown>;
}

/**
 * The fields this state lets this user edit, as a form. Saving is a PATCH with `If-Match`: when
 * someone else changed the entity meanwhile, it says so and which fields they changed, and
 * Reload takes their version as the new base, keeping what was typed here (and their values of
 * the fields not touched here).
 */
export function EditForm(props: Props) {
  const client = useQueryClient();
  const schema = useMemo(() => editSchema(props.schema, props.fields), [props.schema, props.fields]);
  const uiSchema = useMemo(() => uiSchemaFor(props.schema), [props.schema]);
  // The version and values the typing started from (kept until saved or reloaded).
  const [base, setBase] = useState(() => ({ version: props.entity.version, data: pick(props.entity.data, props.fields) }));
  const [typed, setTyped] = useState<Record<string, unknown>>(base.data);
  const [errors, setErrors] = useState<ErrorSchema>({});
  const [message, setMessage] = useState<{ kind: 'ok' | 'error' | 'conflict'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const dirty = Object.keys(mergePatch(base.data, typed, props.fields)).length > 0;
  // Not typing: follow the entity as it changes (a transition, someone else's save).
  if (!dirty && props.entity.version !== base.version && message?.kind !== 'conflict') {
    const data = pick(props.entity.data, props.fields);
    setBase({ version: props.entity.version, data });
    setTyped(data);
  }

  // Typing, and the entity moved on underneath (someone's save or transition, seen live): say so
  // rather than overwrite the form; Reload rebases what was typed on their version.
  const behind = dirty && props.entity.version !== base.version && message?.kind !== 'conflict';

  const save = async () => {
    setBusy(true);
    setMessage(null);
    setErrors({});
    try {
      const saved = await patchEntity(props.tenant, props.type, props.entity.id, base.version, mergePatch(base.data, typed, props.fields));
      const data = pick(saved.data, props.fields);
      setBase({ version: saved.version, data });
      setTyped(data);
      setMessage({ kind: 'ok', text: `Saved: version ${String(saved.version)}.` });
      await client.invalidateQueries({ queryKey: ['t', props.tenant, 'entity', props.type, props.entity.id] });
      await client.invalidateQueries({ queryKey: ['t', props.tenant, 'list', props.type] });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'VERSION_CONFLICT') {
        setMessage({
          kind: 'conflict',
          text: `Someone else changed this ${props.label} since you opened it. Reload to see their version; what you typed stays.`,
        });
      } else if (e instanceof ApiError && e.code === 'VALIDATION_FAILED') {
        const placed = serverErrors(e.details, '/data');
        setErrors(placed.schema);
        setMessage({ kind: 'error', text: ['Some fields need attention.', ...placed.other].join(' ') });
      } else {
        setMessage({ kind: 'error', text: errorMessage(e) });
      }
    } finally {
      setBusy(false);
    }
  };

  const reload = async () => {
    const fresh = (await props.reload()) as { data?: { version: number; data: Record<string, unknown> } } | undefined;
    const entity = fresh?.data ?? props.entity;
    const theirs = pick(entity.data, props.fields);
    const changed = props.fields.filter((f) => JSON.stringify(theirs[f]) !== JSON.stringify(base.data[f]));
    // What was typed here stays; the fields not touched here take their values.
    setTyped(rebase(base.data, typed, theirs, props.fields));
    setBase({ version: entity.version, data: theirs });
    setMessage({
      kind: 'ok',
      text: `Reloaded version ${String(entity.version)}${changed.length ? `; they changed ${changed.join(', ')}` : ''}. Your values are kept: Save to apply them.`,
    });
  };

  return (
    <>
      {behind ? (
        <div className="live-notice" role="status">
          This {props.label} changed while you were editing (now version {String(props.entity.version)}). What you typed is kept;
          Reload to see their version and keep your values.{' '}
          <button type="button" className="secondary small" onClick={() => void reload()}>
            Reload
          </button>
        </div>
      ) : null}
      {message?.kind === 'ok' ? <p role="status">{message.text}</p> : null}
      {message && message.kind !== 'ok' ? (
        <Alert>
          {message.text}{' '}
          {message.kind === 'conflict' ? (
            <button type="button" className="secondary small" onClick={() => void reload()}>
              Reload
            </button>
          ) : null}
        </Alert>
      ) : null}
      <SchemaForm
        idPrefix="edit"
        schema={schema}
        uiSchema={uiSchema}
        formData={typed}
        onChange={(v) => {
          setTyped(v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
        }}
        onSubmit={() => void save()}
        errors={errors}
        disabled={busy}
      >
        <button type="submit" disabled={busy || !dirty}>
          Save
        </button>
      </SchemaForm>
    </>
  );
}
