-- Events and webhooks: what happens to an outbox row after its transaction commits.
--
--   outbox (0001) --trigger--> outbox_pending --relay--> event_log (the tenant's ordered stream,
--                                                        read by GET …/events and the SSE stream)
--                                                   \--> webhook_deliveries (one per matching
--                                                        webhook) --worker--> HTTP POST, with
--                                                        webhook_attempts as the record
--
-- Why a relay assigns positions instead of readers paging by `outbox.id`: an identity value is
-- taken when the row is inserted, not when its transaction commits, so a transaction that
-- commits late can make id 10 visible after a reader already moved past id 11. The relay sees
-- only committed `outbox_pending` rows and numbers them per tenant under a row lock on the
-- tenant's `event_streams` row, so positions become visible in order and a cursor never skips.
--
-- The rules of 0001 hold: `tenant_id` leads every primary key, unique constraint and foreign
-- key; row-level security is enabled and FORCED with the same tenant policy; the server's role
-- `switchyard_app` gets only what it needs.

-- Committed outbox rows not yet relayed. Filled by the trigger below in the writing transaction
-- (so a rolled-back transition leaves nothing); emptied by the relay.
create table outbox_pending (
    tenant_id  uuid not null,
    outbox_id  bigint not null,
    created_at timestamptz not null default now(),
    primary key (tenant_id, outbox_id),
    foreign key (tenant_id, outbox_id) references outbox (tenant_id, id)
);

-- Queues every new outbox row and wakes the relays. NOTIFY is transactional: listeners hear it
-- only when the writing transaction commits, and once per tenant however many rows it wrote.
-- Runs with the rights of the writer (the row's tenant is the transaction's tenant).
create function outbox_enqueue() returns trigger
    language plpgsql
as $$
begin
    insert into outbox_pending (tenant_id, outbox_id, created_at) values (new.tenant_id, new.id, new.created_at);
    perform pg_notify('switchyard_outbox', new.tenant_id::text);
    return null;
end
$$;
create trigger outbox_enqueue
    after insert on outbox
    for each row execute function outbox_enqueue();

-- One row per tenant: the last position given. The relay locks it (`FOR UPDATE SKIP LOCKED`)
-- while it numbers a batch, so one process at a time relays a tenant's events.
create table event_streams (
    tenant_id uuid not null references tenants (id),
    position  bigint not null default 0,
    primary key (tenant_id)
);

-- The tenant's events in relay order: `position` is the cursor of the events API (1, 2, 3, …).
create table event_log (
    tenant_id  uuid not null,
    position   bigint not null,
    outbox_id  bigint not null,
    relayed_at timestamptz not null default now(),
    primary key (tenant_id, position),
    unique (tenant_id, outbox_id),
    foreign key (tenant_id, outbox_id) references outbox (tenant_id, id)
);

-- Webhooks: where to POST which events. `events` holds names (`order.submitted`), prefixes
-- (`order.*`) or `*`. `secret` signs each delivery (HMAC-SHA256); it must be kept in the clear
-- to sign, and the API shows it only when the webhook is created. `name` is set for webhooks
-- declared in the tenant package (replaced by name when the package is applied), null for
-- those created over the API.
create table webhooks (
    tenant_id  uuid not null references tenants (id),
    id         uuid not null,
    name       text,
    url        text not null,
    events     text[] not null,
    secret     text not null,
    created_at timestamptz not null default now(),
    created_by text not null,
    primary key (tenant_id, id),
    unique (tenant_id, name)
);

-- One event for one webhook. `status`: 'pending' (due at `next_attempt_at`; a worker that claims
-- it pushes `next_attempt_at` a lease ahead, so a crashed worker's claim comes back),
-- 'delivered', or 'dead' (gave up after the configured number of attempts; replayable).
create table webhook_deliveries (
    tenant_id        uuid not null,
    id               uuid not null,
    webhook_id       uuid not null,
    outbox_id        bigint not null,
    event_id         uuid not null,
    status           text not null default 'pending' check (status in ('pending', 'delivered', 'dead')),
    -- Attempts since it was queued or last replayed (the retry budget); every attempt ever made
    -- is in webhook_attempts.
    attempts         integer not null default 0,
    next_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    delivered_at     timestamptz,
    primary key (tenant_id, id),
    unique (tenant_id, webhook_id, outbox_id),
    foreign key (tenant_id, webhook_id) references webhooks (tenant_id, id) on delete cascade,
    foreign key (tenant_id, outbox_id) references outbox (tenant_id, id)
);
-- The workers' question (which tenants have deliveries due, and when) and a tenant's due ones.
create index webhook_deliveries_due on webhook_deliveries (tenant_id, next_attempt_at) where status = 'pending';
create index webhook_deliveries_webhook on webhook_deliveries (tenant_id, webhook_id, id);

-- Every attempt: when, the response code (null when no response), the error, how long it took.
create table webhook_attempts (
    tenant_id   uuid not null,
    id          bigint generated always as identity,
    delivery_id uuid not null,
    attempt     integer not null,
    at          timestamptz not null default now(),
    status_code integer,
    error       text,
    duration_ms integer not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, delivery_id) references webhook_deliveries (tenant_id, id) on delete cascade
);
create index webhook_attempts_delivery on webhook_attempts (tenant_id, delivery_id, id);

-- Events written before this migration join the stream too (the relay numbers them first). The
-- owner reads every tenant's outbox here: row-level security is unforced for the length of this
-- statement, inside the migration's transaction, so no other session ever sees it unforced.
alter table outbox no force row level security;
insert into outbox_pending (tenant_id, outbox_id, created_at) select tenant_id, id, created_at from outbox;
alter table outbox force row level security;

do $$
declare
    t text;
begin
    foreach t in array array['outbox_pending', 'event_streams', 'event_log', 'webhooks', 'webhook_deliveries', 'webhook_attempts']
    loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant()) with check (tenant_id = app_tenant())', t);
    end loop;
end
$$;

-- The workers must find out which tenants have work before they can set one, and with no tenant
-- set the policy above shows no row. As for timers (0002): SECURITY DEFINER functions owned by
-- the owner of the tables return only tenant ids (and one number), and a second policy lets the
-- *owner* (no other role) read the two queues while `app.events_scan` is 'on', which the
-- functions set around their one query (with `set_config`: since PostgreSQL 15 only a
-- superuser may attach a custom setting to a function with a `set` clause). `switchyard_app`
-- setting `app.events_scan` itself gains nothing: the policy is not for it. The workers then
-- work each tenant in its own transaction, with the tenant set, under the normal policy. (An
-- owner that is a superuser bypasses row-level security anyway.)
do $$
begin
    execute format(
        'create policy events_scan on outbox_pending for select to %I using (current_setting(''app.events_scan'', true) = ''on'')',
        current_user);
    execute format(
        'create policy events_scan on webhook_deliveries for select to %I using (current_setting(''app.events_scan'', true) = ''on'')',
        current_user);
end
$$;

-- Tenants with events waiting for the relay (at most `p_limit`).
create function outbox_pending_tenants(p_limit integer)
    returns table (tenant_id uuid)
    language plpgsql volatile security definer
    set search_path = pg_catalog, public
as $$
#variable_conflict use_column
begin
    perform set_config('app.events_scan', 'on', true);
    return query
        select distinct p.tenant_id from public.outbox_pending p limit greatest(p_limit, 0);
    perform set_config('app.events_scan', '', true);
end
$$;

-- Tenants with pending webhook deliveries and when the first is due (at most `p_limit`, soonest
-- first): the delivery workers work the due ones and sleep until the next.
create function webhook_due_tenants(p_limit integer)
    returns table (tenant_id uuid, due_at timestamptz)
    language plpgsql volatile security definer
    set search_path = pg_catalog, public
as $$
#variable_conflict use_column
begin
    perform set_config('app.events_scan', 'on', true);
    return query
        select d.tenant_id, min(d.next_attempt_at)
        from public.webhook_deliveries d
        where d.status = 'pending'
        group by d.tenant_id
        order by 2
        limit greatest(p_limit, 0);
    perform set_config('app.events_scan', '', true);
end
$$;

-- For /metrics: the age in seconds of the oldest event not yet relayed (0 when none).
create function outbox_lag_seconds()
    returns double precision
    language plpgsql volatile security definer
    set search_path = pg_catalog, public
as $$
declare
    lag double precision;
begin
    perform set_config('app.events_scan', 'on', true);
    select coalesce(extract(epoch from now() - min(p.created_at))::double precision, 0) into lag
    from public.outbox_pending p;
    perform set_config('app.events_scan', '', true);
    return lag;
end
$$;

revoke all on function outbox_pending_tenants(integer) from public;
revoke all on function webhook_due_tenants(integer) from public;
revoke all on function outbox_lag_seconds() from public;
grant execute on function outbox_pending_tenants(integer) to switchyard_app;
grant execute on function webhook_due_tenants(integer) to switchyard_app;
grant execute on function outbox_lag_seconds() to switchyard_app;

-- What the server's role may do. Attempts are a record: no UPDATE or DELETE (deleting a webhook
-- removes its deliveries and their attempts by cascade, which runs as the tables' owner).
grant select, insert, delete on outbox_pending to switchyard_app;
grant select, insert, update on event_streams to switchyard_app;
grant select, insert on event_log to switchyard_app;
grant select, insert, update, delete on webhooks to switchyard_app;
grant select, insert, update on webhook_deliveries to switchyard_app;
grant select, insert on webhook_attempts to switchyard_app;
