-- What the package's own tests (tests/*.yaml) said when a version was published by
-- `switchyard tenant apply`: {"passed": n, "failed": n, "skipped": bool}; null when the package
-- had no tests or was published another way. `skipped`: published with --skip-tests.
alter table config_versions add column tests jsonb;
