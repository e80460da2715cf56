-- Readiness through the request pool: `/readyz` reads the migrations table as `switchyard_app`
-- too, so "ready" proves the role every request works as can log in and read (not only the
-- owner). The table holds no tenant data: migration versions, names and checksums.
grant select on _sqlx_migrations to switchyard_app;
