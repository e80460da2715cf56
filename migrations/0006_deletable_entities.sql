-- Entities can be deleted (with the `delete` permission), and their history outlives them: the
-- history and timers no longer reference the live entity row. A deletion writes a `delete`
-- history row first, so the audit trail says who deleted what, when, from which state.

alter table transitions drop constraint transitions_tenant_id_entity_id_fkey;
alter table timers drop constraint timers_tenant_id_entity_id_fkey;
