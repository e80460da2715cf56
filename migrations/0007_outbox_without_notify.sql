-- The outbox trigger of 0005 no longer calls pg_notify.
--
-- Why: a transaction that has sent a NOTIFY takes one cluster-wide lock while it commits (its
-- notifications go into the shared queue in commit order), so every transition committed one at
-- a time behind every other, across all tenants. Measured with pgbench on 2 cores, a plain
-- `begin; insert; commit` ran at ~7,200 tx/s, and at ~900-1,000 tx/s with a pg_notify in it.
--
-- What wakes the relay instead (see api/src/workers/commits.rs): the server process that
-- committed tells its own relay directly, in memory, and sends one NOTIFY on
-- `switchyard_outbox` for the tenants it wrote, outside any transition's transaction and at most
-- once per 50 ms, for the other processes. Every relay still polls, so a process that writes
-- and sends nothing (the CLI loading sample data) is picked up within the poll interval.
--
-- The trigger itself stays: it queues the row in `outbox_pending` in the writing transaction,
-- so a rolled-back transition still leaves nothing.
create or replace function outbox_enqueue() returns trigger
    language plpgsql
as $$
begin
    insert into outbox_pending (tenant_id, outbox_id, created_at) values (new.tenant_id, new.id, new.created_at);
    return null;
end
$$;
