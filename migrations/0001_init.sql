-- The initial schema: tenants, published config versions, users, entities, their append-only
-- transition history, the outbox, idempotency records and number sequences.
--
-- Rules that hold for every tenant table:
--   * `tenant_id` leads every primary key, unique constraint and foreign key, so tenant data can
--     later be distributed by tenant (Citus) and no constraint reveals another tenant's rows;
--   * row-level security is enabled and FORCED, with one policy: the row's tenant is the one set
--     for the transaction (`set_config('app.tenant_id', …, true)`); with no tenant set, no rows;
--   * the server works as `switchyard_app`, which owns nothing and cannot bypass RLS.

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'switchyard_app') then
        create role switchyard_app nologin nosuperuser nocreatedb nocreaterole noinherit nobypassrls;
    end if;
end
$$;

-- The tenant of the current transaction, or null when none is set (then every policy is false).
create function app_tenant() returns uuid
    language sql stable parallel safe
as $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$;

create table tenants (
    id           uuid primary key,
    slug         text not null unique check (slug ~ '^[a-z][a-z0-9-]{1,62}$'),
    name         text not null,
    live_version bigint,
    created_at   timestamptz not null default now()
);

-- Immutable published versions of a tenant's package. `package` is the whole normalised package,
-- kept as `json` (not `jsonb`) so its key order, which is the order of states and transitions,
-- survives.
create table config_versions (
    tenant_id  uuid not null references tenants (id),
    version    bigint not null,
    hash       text not null,
    package    json not null,
    created_at timestamptz not null default now(),
    created_by text not null,
    primary key (tenant_id, version),
    unique (tenant_id, hash)
);

create table users (
    tenant_id     uuid not null references tenants (id),
    id            uuid not null,
    email         text not null,
    name          text not null default '',
    roles         text[] not null default '{}',
    active        boolean not null default true,
    password_hash text,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    primary key (tenant_id, id)
);
create unique index users_email_key on users (tenant_id, lower(email));

create table entities (
    tenant_id      uuid not null,
    id             uuid not null,
    type           text not null,
    state          text not null,
    data           jsonb not null,
    version        bigint not null default 1,
    config_version bigint not null,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    created_by     text not null,
    updated_by     text not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, config_version) references config_versions (tenant_id, version)
);
-- Lists are by type (and state), paginated by id (uuid v7: time ordered).
create index entities_type_id on entities (tenant_id, type, id);
create index entities_type_state_id on entities (tenant_id, type, state, id);

-- The append-only history of transitions (and creations, with `transition` = 'create').
create table transitions (
    tenant_id      uuid not null,
    id             bigint generated always as identity,
    entity_id      uuid not null,
    entity_type    text not null,
    transition     text not null,
    from_state     text,
    to_state       text not null,
    actor_id       text not null,
    actor_email    text not null default '',
    at             timestamptz not null default now(),
    input          jsonb not null default '{}',
    changes        jsonb not null default '{}',
    config_version bigint not null,
    parent_id      bigint,
    primary key (tenant_id, id),
    foreign key (tenant_id, entity_id) references entities (tenant_id, id)
);
create index transitions_entity on transitions (tenant_id, entity_id, id);

create function transitions_append_only() returns trigger
    language plpgsql
as $$
begin
    raise exception 'transition history is append-only (% refused)', tg_op
        using errcode = 'insufficient_privilege';
end
$$;
create trigger transitions_append_only
    before update or delete or truncate on transitions
    for each statement execute function transitions_append_only();

-- Events written in the same transaction as the change; delivered after commit.
create table outbox (
    tenant_id     uuid not null,
    id            bigint generated always as identity,
    event_id      uuid not null,
    name          text not null,
    entity_type   text not null,
    entity_id     uuid not null,
    payload       jsonb not null,
    transition_id bigint,
    created_at    timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (tenant_id, event_id)
);

-- One row per (actor, Idempotency-Key): the first answer is replayed for later requests.
create table idempotency (
    tenant_id    uuid not null,
    actor_id     text not null,
    key          text not null,
    request_hash text not null,
    status       integer not null,
    response     jsonb not null,
    created_at   timestamptz not null default now(),
    primary key (tenant_id, actor_id, key)
);

-- Per-tenant number sequences (e.g. order numbers), incremented inside the creating transaction.
create table sequences (
    tenant_id uuid not null,
    name      text not null,
    value     bigint not null,
    primary key (tenant_id, name)
);

-- Row-level security: one policy per table, forced even for the owner.
alter table tenants enable row level security;
alter table tenants force row level security;
-- A tenant row is also visible by its slug when `app.tenant_slug` is set: that is how login and
-- the CLI find a tenant's id before they can set it.
create policy tenant_isolation on tenants
    using (id = app_tenant() or slug = nullif(current_setting('app.tenant_slug', true), ''))
    with check (id = app_tenant());

do $$
declare
    t text;
begin
    foreach t in array array['config_versions', 'users', 'entities', 'transitions', 'outbox', 'idempotency', 'sequences']
    loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant()) with check (tenant_id = app_tenant())', t);
    end loop;
end
$$;

-- What the server's role may do. No UPDATE or DELETE on history or outbox rows.
grant usage on schema public to switchyard_app;
grant select, update (live_version) on tenants to switchyard_app;
grant select, insert on config_versions to switchyard_app;
grant select, insert, update on users to switchyard_app;
grant select, insert, update, delete on entities to switchyard_app;
grant select, insert on transitions to switchyard_app;
grant select, insert on outbox to switchyard_app;
grant select, insert, update, delete on idempotency to switchyard_app;
grant select, insert, update on sequences to switchyard_app;
grant execute on function app_tenant() to switchyard_app;
