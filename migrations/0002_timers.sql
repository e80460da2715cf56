-- State timers: when an entity enters a state whose definition says
-- `timers: [{ after: "72h", transition: cancelOrder }]`, the transaction that moved it there
-- inserts one row here per timer, due `after` later. When the entity leaves the state, the
-- pending rows are settled with outcome 'cancelled'. A worker (`Store::fire_due_timers`) fires
-- the due ones as the system actor, one transaction per timer.
--
-- The rules of 0001 hold: `tenant_id` leads the primary key, row-level security is enabled and
-- forced with the same tenant policy, and the server's role `switchyard_app` gets only what it
-- needs (no DELETE: the rows are the record of what the timers did).

create table timers (
    tenant_id      uuid not null,
    id             bigint generated always as identity,
    entity_id      uuid not null,
    -- The state whose timer this is, and the transition (with its input) to fire.
    state          text not null,
    transition     text not null,
    input          jsonb not null default '{}',
    due_at         timestamptz not null,
    -- The entity's version right after it entered `state`.
    entity_version bigint not null,
    created_at     timestamptz not null default now(),
    -- When the timer was settled, and how: 'fired', 'cancelled' (the entity left the state
    -- first), or the code of the rejection when the transition was refused (e.g. 'GUARD_FAILED').
    -- Both null while the timer is pending.
    fired_at       timestamptz,
    outcome        text,
    primary key (tenant_id, id),
    -- Entities are never deleted while they have history (the history references them too).
    foreign key (tenant_id, entity_id) references entities (tenant_id, id)
);
-- The worker's question, across tenants: which pending timers are due?
create index timers_due on timers (due_at) where fired_at is null;
-- Leaving a state settles the entity's pending timers.
create index timers_entity on timers (tenant_id, entity_id) where fired_at is null;

alter table timers enable row level security;
alter table timers force row level security;
create policy tenant_isolation on timers
    using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());

-- Claiming due timers. The worker does not know the tenants of the due timers before it has
-- found them, and with no tenant set the policy above shows it no row. Two ways out were
-- considered:
--   * an exception in the policy when a setting such as `app.worker = 'timers'` is set: any
--     session of `switchyard_app` can set any setting, so every timer of every tenant would be
--     one `set_config` away from any connection of the server;
--   * (chosen) a SECURITY DEFINER function owned by the owner of the tables, which returns only
--     the keys `(tenant_id, id, entity_id)` of due pending timers and locks them
--     (`FOR UPDATE SKIP LOCKED`, so several server processes never claim the same timer; the
--     row locks last until the caller's transaction ends). The server then sets the claimed
--     tenant as for any request and reads and updates the timer under the normal policy.
-- The function sees the rows because a second policy lets the *owner* (and no other role: the
-- policy is `to` the owner) read and lock timers while `app.timer_claim` is 'on', which the
-- function sets around its one query. (Not with a `set app.timer_claim = 'on'` clause on the
-- function: since PostgreSQL 15 only a superuser may attach a custom setting to a function.)
-- `switchyard_app` setting `app.timer_claim` itself gains nothing: the policy is not for it.
-- (An owner that is a superuser bypasses row-level security anyway.)
do $$
begin
    -- Locking rows needs the UPDATE policy to pass too; the WITH CHECK keeps the exception
    -- from allowing any write.
    execute format(
        'create policy timer_claim_select on timers for select to %I using (current_setting(''app.timer_claim'', true) = ''on'')',
        current_user);
    execute format(
        'create policy timer_claim_lock on timers for update to %I using (current_setting(''app.timer_claim'', true) = ''on'') with check (false)',
        current_user);
end
$$;

-- Up to `p_limit` due pending timers (`due_at <= p_now`), oldest first, locked for the calling
-- transaction; timers locked by another transaction and those in `p_skip` are passed over.
create function claim_due_timers(p_now timestamptz, p_limit integer, p_skip bigint[] default '{}')
    returns table (tenant_id uuid, id bigint, entity_id uuid)
    language plpgsql volatile security definer
    set search_path = pg_catalog, public
as $$
#variable_conflict use_column
begin
    perform set_config('app.timer_claim', 'on', true);
    return query
        select t.tenant_id, t.id, t.entity_id
        from public.timers t
        where t.fired_at is null and t.due_at <= p_now and t.id <> all (coalesce(p_skip, '{}'))
        order by t.due_at, t.id
        limit greatest(p_limit, 0)
        for update of t skip locked;
    perform set_config('app.timer_claim', '', true);
end
$$;
revoke all on function claim_due_timers(timestamptz, integer, bigint[]) from public;

grant select, insert, update on timers to switchyard_app;
grant execute on function claim_due_timers(timestamptz, integer, bigint[]) to switchyard_app;
