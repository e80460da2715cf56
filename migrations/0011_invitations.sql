-- Invitations: how a user without a password (a package's user after `tenant apply`, or one an
-- admin created) gets one. `switchyard user invite` or an admin
-- (`POST /api/v1/t/{tenant}/users/{id}/invite`) makes one; the user sends its token and a new
-- password to `POST /api/v1/auth/accept-invite`.
--
-- As for refresh tokens (0003), the token is `syi_<tenant>_<id>_<secret>`: the tenant and id in
-- the clear let the server set the tenant (row-level security) before it looks the row up, so
-- no SECURITY DEFINER function is needed; only sha-256 of the secret is stored. An invitation
-- is spent (`used_at`) by the statement that sets the password, so it works once; a new one for
-- the same user deletes the older ones.
--
-- Nothing here changes what `auth_user` answers, so no `switchyard_auth` trigger (0009): the
-- sessions an accepted invitation ends are revoked in `refresh_tokens`, which notifies.
create table invitations (
    tenant_id   uuid not null,
    id          uuid not null,
    user_id     uuid not null,
    secret_hash bytea not null,
    created_at  timestamptz not null default now(),
    -- Who invited: `cli`, or the admin's user id.
    created_by  text not null,
    expires_at  timestamptz not null,
    used_at     timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id) on delete cascade
);
create index invitations_user on invitations (tenant_id, user_id);

alter table invitations enable row level security;
alter table invitations force row level security;
create policy tenant_isolation on invitations
    using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());

grant select, insert, update, delete on invitations to switchyard_app;
