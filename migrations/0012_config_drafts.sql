-- Drafts of a tenant's package: the studio's unpublished work, kept on the server so an admin's
-- work is never lost (issue 10). One draft per tenant; publishing is still `config/apply`, after
-- which the studio deletes the draft.
--
-- `package` is the package's canonical JSON (`{"tenant": {…}, "types": [{…}]}`), or whatever
-- object the studio saved: a draft in progress may not validate, and is not validated when
-- saved. It is kept as `json`, not `jsonb`, like `config_versions.package` (0001): the key order
-- is the order of states and transitions, and `jsonb` would sort the keys.
--
-- `version` is the draft's optimistic concurrency counter: 1 when first saved, one more on each
-- save. A save names the version it read and is one conditional statement (`insert … on
-- conflict do nothing` for the first, `update … where version = $n` after), so of concurrent
-- saves from the same version exactly one wins; the others are told the current version.
-- `base_version` is the tenant's live config version when the draft was first saved (what it
-- started from); null when the tenant had none.
create table config_drafts (
    tenant_id    uuid primary key references tenants (id),
    package      json not null,
    version      bigint not null check (version >= 1),
    base_version bigint,
    updated_at   timestamptz not null default now(),
    -- Who saved it last: the admin's email, or its id when it has none (an API key).
    updated_by   text not null
);

alter table config_drafts enable row level security;
alter table config_drafts force row level security;
create policy tenant_isolation on config_drafts
    using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());

grant select, insert, update, delete on config_drafts to switchyard_app;
