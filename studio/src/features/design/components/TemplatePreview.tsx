// The live preview of a title or number template as the admin types it: rendered by the server
// (its bounded template engine, so what is shown is what entities will get) over a live entity of
// the type when there is one, else over sample data made from the type's fields.

import { useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { ApiError, errorMessage } from '../../../lib/envelope';
import { previewTemplate, searchEntities } from '../api/draft';
import type { TypeJson } from '../lib/model';
import { sampleEntity, templateErrorPlace } from '../lib/templates';

/** `value`, once it has stopped changing for `ms`. */
function useSettled<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => {
      setSettled(value);
    }, ms);
    return () => {
      clearTimeout(timer);
    };
  }, [value, ms]);
  return settled;
}

/** The data a preview renders over: the newest live entity of the type, else sample data. */
function usePreviewData(tenant: string, type: TypeJson) {
  const live = useQuery({
    queryKey: ['t', tenant, 'preview-entity', type.name],
    queryFn: async () => (await searchEntities(tenant, type.name, '')).at(0) ?? null,
    retry: false,
    staleTime: 60_000,
  });
  const entity = live.data;
  if (entity) {
    const name = typeof entity.display === 'string' && entity.display !== '' ? entity.display : entity.id.slice(0, 8);
    return { data: entity.data as Record<string, unknown>, source: `the live ${type.label ?? type.name} ${name}`, ready: true };
  }
  return { data: sampleEntity(type), source: 'sample data', ready: !live.isPending };
}

export function TemplatePreview({
  tenant,
  type,
  template,
  kind,
  label,
}: {
  tenant: string;
  type: TypeJson;
  template: string;
  kind: 'title' | 'number';
  label: string;
}) {
  const settled = useSettled(template, 250);
  const { data, source, ready } = usePreviewData(tenant, type);
  const preview = useQuery({
    queryKey: ['t', tenant, 'preview-template', kind, settled, data],
    enabled: ready && settled.trim() !== '',
    retry: false,
    queryFn: () => previewTemplate(tenant, { template: settled, kind, data, ...(kind === 'number' ? { seq: 123 } : {}) }),
  });
  if (template.trim() === '') return null;
  let shown: React.ReactNode;
  if (preview.isError) {
    const e = preview.error;
    shown = (
      <span className="field-error">
        {errorMessage(e)}
        {e instanceof ApiError ? templateErrorPlace(e.details) : ''}
      </span>
    );
  } else if (preview.data) {
    shown = preview.data.rendered === '' ? <span className="muted">(blank: the entity is named by another field)</span> : <strong>{preview.data.rendered}</strong>;
  } else {
    shown = <span className="muted">…</span>;
  }
  return (
    <p className="template-preview">
      <output aria-label={label} aria-live="polite">
        {shown}
      </output>{' '}
      <span className="muted">
        on {source}
        {kind === 'number' ? ', sequence 123' : ''}
      </span>
    </p>
  );
}
