-- Signed tenant context and a context that cannot be forgotten (0.7.0): tenant.sign and
-- tenant.set_signed with every bad token, key rotation, the secrecy of pg_tenant.context_secret,
-- pg_tenant.require_signed_context (functions, SET, SET LOCAL, set_config), and
-- pg_tenant.missing_context = error. Tokens are forged with pgcrypto's HMAC to reach the cases
-- tenant.sign never produces.
BEGIN;
SELECT plan(54);
CREATE EXTENSION IF NOT EXISTS pgcrypto;

\ir include/err.sql
CREATE FUNCTION pg_temp.b64url(data bytea) RETURNS text LANGUAGE sql AS
    $$ SELECT translate(encode(data, 'base64'), E'+/=\n', '-_') $$;
-- A token as a JWT library would make it: header.payload.HMAC-SHA256(header.payload, secret).
CREATE FUNCTION pg_temp.forge(header jsonb, payload jsonb, secret text) RETURNS text LANGUAGE sql AS $$
    SELECT signing_input || '.' || pg_temp.b64url(hmac(signing_input, secret, 'sha256'))
    FROM (SELECT pg_temp.b64url(convert_to(header::text, 'UTF8')) || '.' ||
                 pg_temp.b64url(convert_to(payload::text, 'UTF8')) AS signing_input) s $$;
CREATE FUNCTION pg_temp.part(token text, n int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT convert_from(decode(rpad(translate(split_part(token, '.', n), '-_', '+/'),
                                    (length(split_part(token, '.', n)) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb $$;
CREATE FUNCTION pg_temp.now_unix() RETURNS bigint LANGUAGE sql AS $$ SELECT extract(epoch FROM now())::bigint $$;

CREATE ROLE sc_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.set_session(uuid), tenant.reset(),
    tenant.set_signed(text) TO sc_app;
CREATE SCHEMA sc;
CREATE TABLE sc.notes (tenant_id uuid NOT NULL, body text);
CREATE TABLE sc.public_notes (body text);
GRANT USAGE ON SCHEMA sc TO sc_app;
GRANT SELECT, INSERT ON sc.notes, sc.public_notes TO sc_app;
SELECT is((SELECT count(*) FROM tenant.protect('sc.notes')), 1::bigint, 'sc.notes protected');
SELECT tenant.create('Signed A', 'sc-a') AS a \gset
SELECT tenant.create('Signed B', 'sc-b') AS b \gset
INSERT INTO sc.notes VALUES (:'a', 'note of a'), (:'b', 'note of b');

-------------------------------------------------------------------------------------------------
-- 1. No secret configured
-------------------------------------------------------------------------------------------------
SET LOCAL pg_tenant.context_secret = '';
SELECT is(pg_temp.err(format('SELECT tenant.sign(%L, %L)', :'a', '1 hour')),
          '55000 | pg_tenant.context_secret is not set', 'sign without a secret: 55000');
SELECT is(pg_temp.err(format('SELECT tenant.set_signed(%L)',
                             pg_temp.forge('{"alg": "HS256", "kid": "k1"}', jsonb_build_object('tid', :'a', 'exp', pg_temp.now_unix() + 60),
                                           'an-old-secret-of-at-least-32-bytes!'))),
          '55000 | pg_tenant.context_secret is not set', 'set_signed without a secret: 55000');
SELECT is(pg_temp.err($$SET LOCAL pg_tenant.context_secret = 'k1:short'$$),
          '22023 | invalid pg_tenant.context_secret: a secret has at least 32 bytes', 'a short secret is refused');
SELECT is(pg_temp.err($$SET LOCAL pg_tenant.context_secret = 'k 1:0123456789abcdef0123456789abcdef'$$),
          '22023 | invalid pg_tenant.context_secret: a key id holds A-Z, a-z, 0-9, ''_'' and ''-'' only', 'a bad key id is refused');

-------------------------------------------------------------------------------------------------
-- 2. Good tokens and every bad one
-------------------------------------------------------------------------------------------------
SET LOCAL pg_tenant.context_secret = 'k1:first-secret-0123456789abcdef0123456789';
SELECT tenant.sign(:'a', '1 hour', '{"sub": "user-7", "tid": "forged"}') AS token_a \gset
SELECT is(pg_temp.err(format('SELECT tenant.sign(%L, %L, %L)', :'a', '1 hour', '[1, 2]')),
          '22023 | a token''s claims must be a JSON object', 'claims that are not an object: 22023');
SELECT is(pg_temp.err(format('SELECT tenant.sign(%L, %L)', :'a', '-1 hour')),
          '22023 | a token''s ttl must be positive', 'a ttl that is not positive: 22023');
SELECT tenant.sign(:'b', '1 hour') AS token_b \gset
SELECT is(pg_temp.part(:'token_a', 1),
          '{"alg": "HS256", "typ": "JWT", "kid": "k1"}', 'the header names HS256 and the key');
SELECT is((SELECT format('%s %s %s', p ->> 'tid', p ->> 'sub', (p ->> 'exp')::bigint - (p ->> 'iat')::bigint)
           FROM pg_temp.part(:'token_a', 2) p),
          :'a' || ' user-7 3600', 'the payload has tid, iat, exp and the caller''s claims; tid cannot be overridden');
-- Verified with a JWT library's algorithm (pgcrypto here): the same signature.
SELECT is(pg_temp.b64url(hmac(split_part(:'token_a', '.', 1) || '.' || split_part(:'token_a', '.', 2),
                              'first-secret-0123456789abcdef0123456789', 'sha256')),
          split_part(:'token_a', '.', 3), 'the signature is HMAC-SHA256 of header.payload');

SET LOCAL SESSION AUTHORIZATION sc_app;
SELECT is(pg_temp.err(format('SELECT tenant.sign(%L, %L)', :'a', '1 hour')), '42501 | permission denied for function sign',
          'an application role cannot sign');
SELECT is(tenant.set_signed(:'token_a'), :'a'::uuid, 'set_signed enters the tenant the token names');
SELECT is((SELECT string_agg(body, ',') FROM sc.notes), 'note of a', 'and row level security follows it');
SELECT is(tenant.set_signed(:'token_b'), :'b'::uuid, 'another token, another tenant');

CREATE TEMP TABLE bad (name text, token text, expected text);
INSERT INTO bad VALUES
    ('wrong signature', pg_temp.forge('{"alg": "HS256", "kid": "k1"}', jsonb_build_object('tid', :'a', 'exp', pg_temp.now_unix() + 60),
                                      'another-secret-0123456789abcdef0123456789'),
     'TN011 | invalid tenant token: the signature does not match'),
    ('expired', pg_temp.forge('{"alg": "HS256", "kid": "k1"}', jsonb_build_object('tid', :'a', 'exp', pg_temp.now_unix() - 1),
                              'first-secret-0123456789abcdef0123456789'),
     'TN012 | tenant token expired'),
    ('not yet valid', pg_temp.forge('{"alg": "HS256", "kid": "k1"}',
                                    jsonb_build_object('tid', :'a', 'nbf', pg_temp.now_unix() + 600, 'exp', pg_temp.now_unix() + 900),
                                    'first-secret-0123456789abcdef0123456789'),
     'TN012 | tenant token is not valid yet'),
    ('issued in the future', pg_temp.forge('{"alg": "HS256", "kid": "k1"}',
                                    jsonb_build_object('tid', :'a', 'iat', pg_temp.now_unix() + 600, 'exp', pg_temp.now_unix() + 900),
                                    'first-secret-0123456789abcdef0123456789'),
     'TN012 | tenant token is not valid yet'),
    ('malformed', 'not-a-token', 'TN011 | invalid tenant token: it is not header.payload.signature'),
    ('empty', '', 'TN011 | invalid tenant token: it is not header.payload.signature'),
    ('four parts', :'token_a' || '.x', 'TN011 | invalid tenant token: it is not header.payload.signature'),
    ('not base64url', 'a+b.c.d', 'TN011 | invalid tenant token: a part is not base64url'),
    ('truncated', left(:'token_a', length(:'token_a') - 3), 'TN011 | invalid tenant token: the signature does not match'),
    -- 43 signature characters: 40 decode to 30 bytes, 41 cannot be base64url
    ('truncated mid-character', left(:'token_a', length(:'token_a') - 2), 'TN011 | invalid tenant token: a part is not base64url'),
    ('another tenant''s id with a reused signature',
     split_part(:'token_a', '.', 1) || '.' || split_part(:'token_b', '.', 2) || '.' || split_part(:'token_a', '.', 3),
     'TN011 | invalid tenant token: the signature does not match'),
    ('alg none', pg_temp.b64url('{"alg": "none", "kid": "k1"}') || '.' ||
                 pg_temp.b64url(convert_to(jsonb_build_object('tid', :'a', 'exp', pg_temp.now_unix() + 60)::text, 'UTF8')) || '.AAAA',
     'TN011 | invalid tenant token: the algorithm is not HS256'),
    ('unknown key', pg_temp.forge('{"alg": "HS256", "kid": "k9"}', jsonb_build_object('tid', :'a', 'exp', pg_temp.now_unix() + 60),
                                  'first-secret-0123456789abcdef0123456789'),
     'TN011 | invalid tenant token: key "k9" is not (or no longer) configured'),
    ('no exp', pg_temp.forge('{"alg": "HS256", "kid": "k1"}', jsonb_build_object('tid', :'a'), 'first-secret-0123456789abcdef0123456789'),
     'TN011 | invalid tenant token: the payload has no tid or exp'),
    ('tid not a uuid', pg_temp.forge('{"alg": "HS256", "kid": "k1"}', jsonb_build_object('tid', 'sc-a', 'exp', pg_temp.now_unix() + 60),
                                     'first-secret-0123456789abcdef0123456789'),
     'TN011 | invalid tenant token: tid is not a uuid'),
    ('unknown tenant', pg_temp.forge('{"alg": "HS256", "kid": "k1"}',
                                     jsonb_build_object('tid', '00000000-0000-4000-8000-000000000000', 'exp', pg_temp.now_unix() + 60),
                                     'first-secret-0123456789abcdef0123456789'),
     'TN001 | tenant "00000000-0000-4000-8000-000000000000" does not exist');
SELECT is(pg_temp.err(format('SELECT tenant.set_signed(%L)', token)), expected, 'bad token: ' || name) FROM bad ORDER BY name;
SELECT is(tenant.current_id(), :'b'::uuid, 'no bad token changed the tenant');
RESET SESSION AUTHORIZATION;

-- Rotation: k2 signs, k1 still verifies; then k1 is retired.
SET LOCAL pg_tenant.context_secret = 'k2:second-secret-0123456789abcdef012345678, k1:first-secret-0123456789abcdef0123456789';
SELECT is(pg_temp.err(format('SELECT tenant.set_signed(%L)', :'token_a')), 'ok', 'during rotation a k1 token still works');
SELECT is(split_part(tenant.sign(:'a', '5 minutes'), '.', 1), pg_temp.b64url('{"alg": "HS256", "typ": "JWT", "kid": "k2"}'),
          'and new tokens are signed with the first key (k2)');
SET LOCAL pg_tenant.context_secret = 'k2:second-secret-0123456789abcdef012345678';
SELECT is(pg_temp.err(format('SELECT tenant.set_signed(%L)', :'token_a')),
          'TN011 | invalid tenant token: key "k1" is not (or no longer) configured', 'a token of a retired key: TN011');

-- A suspended tenant's token does not enter it.
SELECT tenant.sign(:'a', '1 hour') AS token_a2 \gset
SELECT tenant.suspend(:'a');
SELECT is(pg_temp.err(format('SELECT tenant.set_signed(%L)', :'token_a2')), 'TN002 | tenant "sc-a" is suspended',
          'a valid token of a suspended tenant: TN002');
SELECT tenant.resume(:'a');

-------------------------------------------------------------------------------------------------
-- 3. The secret stays secret
-------------------------------------------------------------------------------------------------
SET LOCAL SESSION AUTHORIZATION sc_app;
SELECT is(pg_temp.err('SHOW pg_tenant.context_secret'),
          '42501 | must be superuser or have privileges of pg_read_all_settings to examine "pg_tenant.context_secret"',
          'SHOW is refused');
SELECT is(pg_temp.err($$SELECT current_setting('pg_tenant.context_secret')$$),
          '42501 | must be superuser or have privileges of pg_read_all_settings to examine "pg_tenant.context_secret"',
          'current_setting is refused');
SELECT is((SELECT count(*) FROM pg_settings WHERE setting LIKE '%second-secret%'), 0::bigint, 'pg_settings does not show it');
SELECT is(pg_temp.err($$SET pg_tenant.context_secret = 'k3:mine-mine-mine-0123456789abcdef0123'$$),
          '42501 | permission denied to set parameter "pg_tenant.context_secret"', 'nor can the role set it');
RESET SESSION AUTHORIZATION;
SELECT is(pg_temp.err($$ALTER ROLE sc_app SET pg_tenant.context_secret = 'k3:stored-in-catalog-0123456789abcdef'$$),
          '55P02 | pg_tenant.context_secret can be set only in postgresql.conf, by ALTER SYSTEM or by SET',
          'ALTER ROLE ... SET is refused (pg_db_role_setting is readable by all)');

-------------------------------------------------------------------------------------------------
-- 4. require_signed_context
-------------------------------------------------------------------------------------------------
SELECT tenant.sign(:'a', '1 minute') AS token_a3 \gset
SET LOCAL pg_tenant.require_signed_context = on;
SET LOCAL SESSION AUTHORIZATION sc_app;
SELECT tenant.reset();
SELECT is(pg_temp.err(format('SELECT tenant.set(%L)', :'a')), 'TN013 | this role may enter a tenant only with a signed token',
          'tenant.set is refused');
SELECT is(pg_temp.err(format('SELECT tenant.set(%L)', 'sc-a')), 'TN013 | this role may enter a tenant only with a signed token',
          'tenant.set by slug is refused');
SELECT is(pg_temp.err(format('SELECT tenant.set_session(%L::uuid)', :'a')), 'TN013 | this role may enter a tenant only with a signed token',
          'tenant.set_session is refused');
SELECT is(pg_temp.err(format('SET LOCAL pg_tenant.tenant_id = %L', :'a')),
          'TN013 | this role may enter a tenant only with a signed token', 'SET LOCAL is refused');
SELECT is(pg_temp.err(format('SET pg_tenant.tenant_id = %L', :'a')),
          'TN013 | this role may enter a tenant only with a signed token', 'SET is refused');
SELECT is(pg_temp.err(format($$SELECT set_config('pg_tenant.tenant_id', %L, true)$$, :'a')),
          'TN013 | this role may enter a tenant only with a signed token', 'set_config is refused');
SELECT is(pg_temp.err('SET pg_tenant.require_signed_context = off'),
          '42501 | permission denied to set parameter "pg_tenant.require_signed_context"', 'the role cannot turn it off');
SELECT is(tenant.set_signed(:'token_a3'), :'a'::uuid, 'a signed token still enters');
RESET SESSION AUTHORIZATION;

-------------------------------------------------------------------------------------------------
-- 5. missing_context = error
-------------------------------------------------------------------------------------------------
SET LOCAL pg_tenant.require_signed_context = off;
SET LOCAL pg_tenant.missing_context = error;
SET LOCAL SESSION AUTHORIZATION sc_app;
SELECT tenant.reset();
SELECT is(pg_temp.err('SELECT count(*) FROM sc.notes'), 'TN008 | no tenant is set',
          'reading a scoped table with no tenant fails with TN008');
SELECT is(pg_temp.err($$INSERT INTO sc.notes VALUES (NULL, 'x')$$), 'TN008 | no tenant is set', 'so does writing one');
CREATE FUNCTION pg_temp.detail(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN d;
END $$;
SELECT is(pg_temp.detail('SELECT 1 FROM sc.public_notes, sc.notes'),
          'Table sc.notes is tenant-scoped, and pg_tenant.missing_context is error.', 'the error names the table');
SELECT is(pg_temp.err('SELECT count(*) FROM sc.public_notes'), 'ok', 'tables that are not scoped are not affected');
SELECT is(pg_temp.err('EXPLAIN SELECT count(*) FROM sc.notes'), 'ok', 'EXPLAIN without ANALYZE runs nothing: passes');
SELECT tenant.set(:'b');
SELECT is((SELECT string_agg(body, ',') FROM sc.notes), 'note of b', 'with a tenant set, statements run');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
