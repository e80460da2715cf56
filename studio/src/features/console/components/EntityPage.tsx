import type { ErrorSchema } from '@rjsf/utils';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Link, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { Loading } from '../../../components/Loading';
import { entityName } from '../../../lib/entityName';
import { humanize } from '../../../lib/humanize';
import { inSchemaOrder } from '../../../lib/schemaOrder';
import { workflowLabels } from '../../../lib/workflowLabels';
import { ApiError, errorMessage } from '../../../lib/envelope';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { entityQuery, fire, historyQuery, meQuery, tenantDocQuery, transitionsQuery } from '../api/entities';
import { typesQuery } from '../api/types';
import { cell } from '../lib/columns';
import { createSchema, editableFields, serverErrors, uiSchemaFor, type StateInfo } from '../lib/forms';
import { reasonText } from '../lib/reasons';
import { referrers } from '../lib/related';
import { DataValue } from './DataValue';
import { EditForm } from './EditForm';
import { Related } from './Related';
import { SchemaForm } from './SchemaForm';
import { When } from '../../../components/When';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One entity: its data, what this user may do to it now (and why not), and its history. */
export function EntityPage() {
  const { tenant = '', type = '', id = '' } = useParams();
  const uid = useId();
  const client = useQueryClient();
  const types = useQuery(typesQuery(tenant));
  const entity = useQuery(entityQuery(tenant, type, id));
  const transitions = useQuery(transitionsQuery(tenant, type, id));
  const history = useQuery(historyQuery(tenant, type, id));
  const me = useQuery(meQuery());
  const doc = useQuery(tenantDocQuery(tenant));
  const [inputs, setInputs] = useState<Record<string, unknown>>({});
  const [inputErrors, setInputErrors] = useState<Record<string, ErrorSchema>>({});
  const [notice, setNotice] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const info = types.data?.data.find((t) => t.name === type);
  const title = entity.data ? entityName(entity.data) : id.slice(0, 8);
  useDocumentTitle(`${info?.label ?? type} ${title}`, tenant);
  const props = isRecord(info?.schema) && isRecord(info.schema.properties) ? info.schema.properties : {};
  const workflow = isRecord(info?.workflow) ? info.workflow : {};
  const labels = workflowLabels(workflow);

  const states = Array.isArray(workflow.states) ? (workflow.states as StateInfo[]) : undefined;
  const related = referrers(types.data?.data ?? [], doc.data, tenant, type);
  const editable = entity.data ? editableFields(states, entity.data.state, me.data?.roles ?? []) : [];

  const run = async (name: string, label: string) => {
    setBusy(true);
    setNotice(null);
    setRefusal(null);
    setInputErrors({});
    try {
      const given = inputs[name];
      const input = isRecord(given) ? given : {};
      const outcome = await fire(tenant, type, id, name, input);
      const state = (outcome.entity as { state?: string }).state ?? '';
      setNotice(`${label}: now ${labels.state(state)}.`);
      setInputs({ ...inputs, [name]: {} });
      await client.invalidateQueries({ queryKey: ['t', tenant, 'entity', type, id] });
      await client.invalidateQueries({ queryKey: ['t', tenant, 'list', type] });
      await client.invalidateQueries({ queryKey: ['t', tenant, 'inbox'] });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'VALIDATION_FAILED') {
        const placed = serverErrors(e.details, '/input');
        setInputErrors({ [name]: placed.schema });
        setRefusal([`${label}: some fields need attention.`, ...placed.other].join(' '));
      } else {
        setRefusal(errorMessage(e));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <p>
        <Link to={paths.list(tenant, type)}>← {info?.label ?? type}</Link>
      </p>
      {entity.isPending && <Loading />}
      {entity.isError && <Alert>{errorMessage(entity.error)}</Alert>}
      {entity.data && (
        <>
          <div className="designer-head">
            <h1>
              {info?.label ?? type} {title}
            </h1>
            <span className={`badge state-${entity.data.state.toLowerCase()}`} aria-label="State" title={entity.data.state}>
              {labels.state(entity.data.state)}
            </span>
            <span className="muted">version {entity.data.version}</span>
          </div>
          <div className="designer-body">
            <section aria-labelledby={`${uid}-data`}>
              <h2 id={`${uid}-data`}>Data</h2>
              <dl className="data">
                {inSchemaOrder(entity.data.data, props).map(([k, v]) => {
                  const def = isRecord(props[k]) ? props[k] : {};
                  return (
                    <div key={k}>
                      <dt>{typeof def.title === 'string' ? def.title : humanize(k)}</dt>
                      <dd>
                        <DataValue tenant={tenant} schema={def} value={v} users={entity.data.users} />
                      </dd>
                    </div>
                  );
                })}
              </dl>
              {editable.length > 0 && info ? (
                <section className="edit-section" aria-labelledby={`${uid}-edit`}>
                  <h2 id={`${uid}-edit`}>Edit</h2>
                  <EditForm
                    key={entity.data.id}
                    tenant={tenant}
                    type={type}
                    label={info.label ?? type}
                    schema={info.schema}
                    fields={editable}
                    entity={entity.data}
                    reload={() => entity.refetch()}
                  />
                </section>
              ) : null}
              <Related tenant={tenant} id={id} referrers={related} />
            </section>
            <aside className="side" aria-labelledby={`${uid}-do`}>
              <h2 id={`${uid}-do`}>Transitions</h2>
              {notice ? <p role="status">{notice}</p> : null}
              {refusal ? <Alert>{refusal}</Alert> : null}
              {transitions.isError && <Alert>{errorMessage(transitions.error)}</Alert>}
              {transitions.data?.length === 0 ? <p className="muted">No transition leaves this state.</p> : null}
              <ul className="transitions">
                {(transitions.data ?? []).map((t) => {
                  const label = t.label ?? labels.transition(t.name);
                  const why = t.allowed ? null : reasonText(t);
                  return (
                    <li key={t.name}>
                      {t.input_schema && t.allowed ? (
                        <fieldset className="transition-input">
                          <legend>Input of {label}</legend>
                          <SchemaForm
                            idPrefix={`${uid}-${t.name}`}
                            schema={createSchema(t.input_schema)}
                            uiSchema={uiSchemaFor(t.input_schema)}
                            formData={inputs[t.name] ?? {}}
                            onChange={(v) => {
                              setInputs({ ...inputs, [t.name]: v });
                            }}
                            onSubmit={() => void run(t.name, label)}
                            errors={inputErrors[t.name]}
                            disabled={busy}
                          >
                            <button type="submit" disabled={busy}>
                              {label}
                            </button>
                          </SchemaForm>
                        </fieldset>
                      ) : (
                        <button
                          type="button"
                          disabled={!t.allowed || busy}
                          aria-describedby={why ? `${uid}-${t.name}-why` : undefined}
                          onClick={() => void run(t.name, label)}
                        >
                          {label}
                        </button>
                      )}
                      {why ? (
                        <p id={`${uid}-${t.name}-why`} className="muted reason">
                          {why}
                        </p>
                      ) : null}
                    </li>
                  );
                })}
              </ul>
            </aside>
          </div>
          <section aria-labelledby={`${uid}-h`}>
            <h2 id={`${uid}-h`}>History</h2>
            <ol className="history" aria-label="History">
              {(history.data ?? []).map((h) => (
                <li key={h.id}>
                  <strong>{labels.transition(h.transition)}</strong> {h.from ? `${labels.state(h.from)} → ` : ''}
                  {labels.state(h.to)} <span className="muted">by {h.actor.email || h.actor.id} at <When iso={h.at} />, version {h.definition_version}</span>
                  {Object.keys(h.changes).length > 0 ? (
                    <ul className="changes-list">
                      {Object.entries(h.changes).map(([k, v]) => (
                        <li key={k}>
                          {k}: <code>{cell(v)}</code>
                        </li>
                      ))}
                    </ul>
                  ) : null}
                </li>
              ))}
            </ol>
          </section>
        </>
      )}
    </>
  );
}
