-- What the admin who published a version said about it (the studio's publish dialog,
-- `switchyard tenant apply --comment`), shown in the list of versions. Null when none was given.
-- Written in the publishing transaction with the version's row; never changed afterwards.
alter table config_versions add column comment text
    constraint config_versions_comment_length check (char_length(comment) <= 1000);
