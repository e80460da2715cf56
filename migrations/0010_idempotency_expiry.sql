-- Idempotency records expire. A record answers for its key for a retention time (the server's
-- `SWITCHYARD_IDEMPOTENCY_TTL`, default 24 hours); from then on the store treats it as absent
-- (`engine::store::sql::get_idempotency`: `now() - created_at < ttl`), so the key may be used
-- again and the request executes, its answer replacing the old record in the same statement
-- (`put_idempotency`: insert … on conflict do update, only over an expired record). That holds
-- whether or not the record has been deleted yet: the purge below only frees the space, on its
-- own schedule (the `housekeeping` worker of `api::workers`).
--
-- The rules of 0001 hold: row-level security on `idempotency` stays forced with its tenant
-- policy, and `switchyard_app` gets no more than it had.

-- The purge's question, across tenants: the oldest records first.
create index idempotency_created_at on idempotency (created_at);

-- The purge must look across tenants, and with no tenant set the policy shows no row. As for
-- timers (0002) and events (0005): a SECURITY DEFINER function owned by the owner of the table
-- returns only a count, and extra policies let the *owner* (and no other role: they are `to`
-- the owner) read, lock and delete records while `app.idempotency_purge` is 'on', which the
-- function sets around its one statement (with `set_config`: since PostgreSQL 15 only a
-- superuser may attach a custom setting to a function). `switchyard_app` setting
-- `app.idempotency_purge` itself gains nothing: the policies are not for it. (An owner that is
-- a superuser bypasses row-level security anyway.) Locking needs the UPDATE policy to pass;
-- its WITH CHECK keeps it from allowing any write. The DELETE's condition reads `created_at`,
-- so the SELECT policy is needed too.
do $$
begin
    execute format(
        'create policy idempotency_purge_select on idempotency for select to %I using (current_setting(''app.idempotency_purge'', true) = ''on'')',
        current_user);
    execute format(
        'create policy idempotency_purge_lock on idempotency for update to %I using (current_setting(''app.idempotency_purge'', true) = ''on'') with check (false)',
        current_user);
    execute format(
        'create policy idempotency_purge_delete on idempotency for delete to %I using (current_setting(''app.idempotency_purge'', true) = ''on'')',
        current_user);
end
$$;

-- Deletes up to `p_limit` (at most 10,000) records of any tenant whose age is `p_older_than` or
-- more, oldest first, and returns how many it deleted: one bounded batch per call (and per
-- transaction); the caller calls again while batches come back full. Records locked by another
-- transaction (a request replacing its expired record right now) are passed over, and a record
-- replaced since it was found is not deleted (its age is checked again on the row deleted).
-- `p_older_than` must be at least 1 minute, the least the server accepts: the function is the
-- server role's, and no caller should be able to empty every tenant's records at once.
create function purge_expired_idempotency(p_older_than interval, p_limit integer)
    returns bigint
    language plpgsql volatile security definer
    set search_path = pg_catalog, public
as $$
declare
    deleted bigint;
begin
    if p_older_than is null or p_older_than < interval '1 minute' then
        raise exception 'idempotency records are kept at least 1 minute, not %', p_older_than
            using errcode = 'invalid_parameter_value';
    end if;
    perform set_config('app.idempotency_purge', 'on', true);
    with expired as (
        select i.tenant_id, i.actor_id, i.key
        from public.idempotency i
        where i.created_at <= now() - p_older_than
        order by i.created_at
        limit greatest(least(coalesce(p_limit, 0), 10000), 0)
        for update of i skip locked
    )
    delete from public.idempotency i
    using expired e
    where i.tenant_id = e.tenant_id and i.actor_id = e.actor_id and i.key = e.key
      and i.created_at <= now() - p_older_than;
    get diagnostics deleted = row_count;
    perform set_config('app.idempotency_purge', '', true);
    return deleted;
end
$$;
revoke all on function purge_expired_idempotency(interval, integer) from public;
grant execute on function purge_expired_idempotency(interval, integer) to switchyard_app;
