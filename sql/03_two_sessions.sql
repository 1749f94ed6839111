-- A change committed in one session reaches another live session's cache at its next
-- transaction. The second session is a dblink connection to this database.
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT tenant.create('Epsilon', 'epsilon') AS epsilon \gset
SELECT dblink_connect('other', format('dbname=%s port=%s', current_database(), current_setting('port')));

-- Warm this session's cache.
SELECT tenant.set('epsilon') = :'epsilon' AS entered;
SELECT hits + misses > 0 AS cache_used FROM tenant.cache_info();

-- The other session suspends the tenant and commits.
SELECT * FROM dblink('other', format('SELECT tenant.suspend(%L)::text', :'epsilon')) AS t(done text);
-- Our next transaction sees it.
SELECT error_of($$SELECT tenant.set('epsilon')$$);

-- The other session, inside the tenant for the whole session, is refused once we resume and
-- then suspend it again: every backend follows every commit.
SELECT tenant.resume(:'epsilon');
SELECT id = :'epsilon' AS other_entered
  FROM dblink('other', $$SELECT tenant.set_session('epsilon')$$) AS t(id uuid);
SELECT id = :'epsilon' AS other_inside FROM dblink('other', $$SELECT tenant.current_id()$$) AS t(id uuid);
SELECT tenant.suspend(:'epsilon');
\set VERBOSITY terse
SELECT id = :'epsilon' AS other_inside FROM dblink('other', $$SELECT tenant.current_id()$$) AS t(id uuid);
\set VERBOSITY default
SELECT tenant.resume(:'epsilon');
SELECT id = :'epsilon' AS other_inside FROM dblink('other', $$SELECT tenant.current_id()$$) AS t(id uuid);

SELECT dblink_disconnect('other');
