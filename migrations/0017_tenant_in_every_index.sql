-- Every index of a tenant table has `tenant_id` among its columns (the catalog test
-- `tests/tests/suite/catalog.rs` checks it, with primary keys, unique constraints and foreign
-- keys; docs/deploy.md, "Citus"). These two served only cross-tenant workers and named no
-- tenant: the timers due (oldest first, `claim_due_timers`) and the idempotency records to purge
-- (`purge_expired_idempotency`). Their leading column stays, so the workers' scans are the same.

create index timers_due_tenant on timers (due_at, tenant_id) where fired_at is null;
drop index timers_due;
alter index timers_due_tenant rename to timers_due;

create index idempotency_created_at_tenant on idempotency (created_at, tenant_id);
drop index idempotency_created_at;
alter index idempotency_created_at_tenant rename to idempotency_created_at;
