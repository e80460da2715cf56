-- `entities` partitioned by tenant: one partition per tenant, `entities_of_<tenant, 32 hex
-- digits>`, created with the tenant.
--
-- Why: every tenant's published lists, searches and unique fields get their own partial indexes
-- (`tenants::indexes`, `tenants::unique`: about 36 for the example tenant). On one table, every
-- statement on `entities` was planned against every tenant's indexes and every write checked
-- every index's predicate: at 50 example tenants (1,805 indexes) an operation cost the database
-- 55–115 ms of CPU instead of ~5 ms, most of it in the planner opening indexes
-- (docs/benchmarks.md, "The realistic mix"). One tenant's configuration slowed every other
-- tenant. Partitioned, a statement that names its tenant (they all do: the catalog test
-- `statements_name_their_tenant`) is planned against that tenant's partition and indexes only,
-- and a write checks only its tenant's indexes. The per-tenant indexes are built on the tenant's
-- partition (`engine::store::query::entities_partition`), `concurrently` as before.
--
-- What stays: the table's name, columns, keys, global indexes, row-level security (on the
-- parent, which every statement names; each partition has the same policy forced too, so a
-- partition named directly shows nothing of another tenant either), triggers and grants. The
-- partitions are created by the owner (`entities_add_partition`, SECURITY DEFINER) when a
-- `tenants` row is inserted, and attached with `ALTER TABLE … ATTACH PARTITION`, which takes
-- SHARE UPDATE EXCLUSIVE on `entities`: other tenants' reads and writes go on while a tenant is
-- created. There is no default partition: an entity of a tenant without one is refused (the
-- foreign key to `config_versions` refuses it anyway).
--
-- An existing database is converted in this migration's transaction: the rows are copied into
-- the partitioned table and every per-tenant index is built again, with its name and comment,
-- on its tenant's partition (not `concurrently`: the migration holds the table).

-- The name of a tenant's partition of `entities`.
create function entities_partition(tenant uuid) returns text
    language sql immutable strict parallel safe
as $$ select 'entities_of_' || replace(tenant::text, '-', '') $$;

-- Creates and attaches `tenant`'s partition of `entities`, if it has none.
create function entities_add_partition(tenant uuid) returns void
    language plpgsql security definer set search_path = public, pg_temp
as $$
declare
    part text := entities_partition(tenant);
begin
    if to_regclass(part) is not null then
        return;
    end if;
    execute format('create table %I (like entities including defaults including constraints including storage)', part);
    -- The parent's key and indexes, named after the partition (plans name them), matched by
    -- `attach` rather than built again.
    execute format('alter table %I add constraint %I primary key (tenant_id, id)', part, part || '_pkey');
    execute format('create index %I on %I (tenant_id, type, id)', part || '_type_id', part);
    execute format('create index %I on %I (tenant_id, type, state, id)', part || '_type_state_id', part);
    execute format('create index %I on %I (tenant_id, type, created_at, id)', part || '_type_created_id', part);
    execute format('create index %I on %I (tenant_id, type, updated_at, id)', part || '_type_updated_id', part);
    execute format('alter table %I enable row level security', part);
    execute format('alter table %I force row level security', part);
    execute format(
        'create policy tenant_isolation on %I using (tenant_id = app_tenant()) with check (tenant_id = app_tenant())',
        part);
    execute format('alter table entities attach partition %I for values in (%L)', part, tenant);
end
$$;
revoke all on function entities_add_partition(uuid) from public;

-- The partition comes with the tenant.
create function tenants_add_partition() returns trigger
    language plpgsql security definer set search_path = public, pg_temp
as $$
begin
    perform entities_add_partition(new.id);
    return null;
end
$$;
revoke all on function tenants_add_partition() from public;

-- The table as it was, under another name, until its rows are copied.
alter table entities rename to entities_unpartitioned;
alter index entities_pkey rename to entities_unpartitioned_pkey;
alter index entities_type_id rename to entities_unpartitioned_type_id;
alter index entities_type_state_id rename to entities_unpartitioned_type_state_id;
alter index entities_type_created_id rename to entities_unpartitioned_type_created_id;
alter index entities_type_updated_id rename to entities_unpartitioned_type_updated_id;
alter table entities_unpartitioned
    rename constraint entities_tenant_id_config_version_fkey to entities_unpartitioned_config_version_fkey;

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
    immutable      boolean not null default false,
    primary key (tenant_id, id),
    foreign key (tenant_id, config_version) references config_versions (tenant_id, version)
) partition by list (tenant_id);
create index entities_type_id on entities (tenant_id, type, id);
create index entities_type_state_id on entities (tenant_id, type, state, id);
create index entities_type_created_id on entities (tenant_id, type, created_at, id);
create index entities_type_updated_id on entities (tenant_id, type, updated_at, id);

create trigger tenants_add_partition
    after insert on tenants
    for each row execute function tenants_add_partition();

do $$
declare
    t uuid;
    ix record;
    part text;
begin
    for t in select id from tenants loop
        perform entities_add_partition(t);
    end loop;
    -- Before the triggers and the policy: the rows are copied as they are.
    insert into entities (tenant_id, id, type, state, data, version, config_version, created_at, updated_at,
                          created_by, updated_by, immutable)
    select tenant_id, id, type, state, data, version, config_version, created_at, updated_at,
           created_by, updated_by, immutable
    from entities_unpartitioned;
    -- The per-tenant indexes (list, search, unique), each on its tenant's partition.
    for ix in
        select c.relname::text as name, pg_get_indexdef(i.indexrelid) as def,
               obj_description(i.indexrelid, 'pg_class') as comment
        from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = 'entities_unpartitioned'::regclass
          and not starts_with(c.relname::text, 'entities_unpartitioned')
    loop
        part := entities_partition((regexp_match(ix.def, 'tenant_id = ''([0-9a-f-]{36})''::uuid'))[1]::uuid);
        if part is null or to_regclass(part) is null then
            raise exception 'index % names no tenant with a partition: %', ix.name, ix.def;
        end if;
        execute format('drop index %I', ix.name);
        execute replace(ix.def, ' ON public.entities_unpartitioned ', format(' ON public.%I ', part));
        if ix.comment is not null then
            execute format('comment on index %I is %L', ix.name, ix.comment);
        end if;
    end loop;
end
$$;

drop table entities_unpartitioned;

alter table entities enable row level security;
alter table entities force row level security;
create policy tenant_isolation on entities using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());
grant select, insert, update, delete on entities to switchyard_app;

create trigger entities_immutable_on_insert
    before insert on entities
    for each row execute function entities_immutable_on_insert();
create trigger entities_append_only_update
    before update on entities
    for each row
    when (old.immutable or new.immutable is distinct from old.immutable
          or new.config_version is distinct from old.config_version or new.type is distinct from old.type)
    execute function entities_append_only();
create trigger entities_append_only_delete
    before delete on entities
    for each row
    when (old.immutable)
    execute function entities_append_only();
