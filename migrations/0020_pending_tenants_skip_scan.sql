-- The tenants with events waiting for the relay, found by skipping through the primary key
-- (tenant_id, outbox_id) one tenant at a time: a few index probes per tenant. `select distinct`
-- read every pending row, which after an outage is the whole backlog, on every full pass of
-- every server's relay. Same signature, rights and row-level security setting as in 0005.
create or replace function outbox_pending_tenants(p_limit integer)
    returns table (tenant_id uuid)
    language plpgsql volatile security definer
    set search_path = pg_catalog, public
as $$
#variable_conflict use_column
begin
    perform set_config('app.events_scan', 'on', true);
    return query
        with recursive t(id) as (
            (select p.tenant_id from public.outbox_pending p order by p.tenant_id limit 1)
            union all
            select (select p.tenant_id from public.outbox_pending p
                    where p.tenant_id > t.id order by p.tenant_id limit 1)
            from t
            where t.id is not null
        )
        select t.id from t where t.id is not null limit greatest(p_limit, 0);
    perform set_config('app.events_scan', '', true);
end
$$;
