-- Least privilege for users and tokens (issue 14). The application role may READ users and
-- tokens (it authenticates requests) but not change them: no INSERT, UPDATE, DELETE or
-- TRUNCATE on ledger_users / ledger_tokens. Changes go through the SECURITY DEFINER functions
-- below, which (1) accept an acting user only if it is an enabled admin — unless the session
-- itself is the tables' owner (the shell's `ledger users …`, migrations) — and (2) append who
-- did what to ledger_auth_log, which is append-only like the event log.
CREATE TABLE IF NOT EXISTS ledger_auth_log (
    id        bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor     text        NOT NULL,          -- the acting user (an admin) or 'cli'
    db_user   text        NOT NULL DEFAULT session_user,
    action    text        NOT NULL,          -- user.create | user.disable | user.enable |
                                             -- token.create | token.revoke
    target    text        NOT NULL,          -- user id or token id (never a secret)
    detail    text        NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ledger_auth_log_target_idx ON ledger_auth_log (target, id);

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ledger_users, ledger_tokens, ledger_auth_log
    FROM ledger_app, PUBLIC;
GRANT SELECT ON ledger_users, ledger_tokens, ledger_auth_log TO ledger_app;

CREATE OR REPLACE TRIGGER ledger_auth_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_auth_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();

-- The acting user must be an enabled admin, unless the session is the owner's.
CREATE OR REPLACE FUNCTION ledger_auth_check_actor(p_actor text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF p_actor IS NULL OR p_actor = '' THEN
        RAISE EXCEPTION 'an acting user is required' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF pg_catalog.pg_has_role(session_user,
            (SELECT c.relowner FROM pg_catalog.pg_class c
              WHERE c.oid = 'ledger_users'::regclass), 'MEMBER') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ledger_users
                    WHERE user_id = p_actor AND role = 'admin' AND NOT disabled) THEN
        RAISE EXCEPTION 'user administration needs an enabled admin'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION ledger_auth_create_user(p_user_id text, p_role text, p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    n integer;
BEGIN
    PERFORM ledger_auth_check_actor(p_actor);
    INSERT INTO ledger_users (user_id, role, created_by) VALUES (p_user_id, p_role, p_actor)
        ON CONFLICT (user_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN false;
    END IF;
    INSERT INTO ledger_auth_log (actor, action, target, detail)
        VALUES (p_actor, 'user.create', p_user_id, 'role=' || p_role);
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION ledger_auth_set_disabled(p_user_id text, p_disabled boolean,
                                                    p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    n integer;
BEGIN
    PERFORM ledger_auth_check_actor(p_actor);
    UPDATE ledger_users SET disabled = p_disabled WHERE user_id = p_user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN false;
    END IF;
    INSERT INTO ledger_auth_log (actor, action, target)
        VALUES (p_actor, CASE WHEN p_disabled THEN 'user.disable' ELSE 'user.enable' END,
                p_user_id);
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION ledger_auth_create_token(p_token_id text, p_user_id text,
                                                    p_secret_hash text, p_label text,
                                                    p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM ledger_auth_check_actor(p_actor);
    IF NOT EXISTS (SELECT 1 FROM ledger_users WHERE user_id = p_user_id) THEN
        RETURN false;
    END IF;
    INSERT INTO ledger_tokens (token_id, user_id, secret_hash, label)
        VALUES (p_token_id, p_user_id, p_secret_hash, p_label);
    INSERT INTO ledger_auth_log (actor, action, target, detail)
        VALUES (p_actor, 'token.create', p_token_id, 'user=' || p_user_id);
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION ledger_auth_revoke_token(p_token_id text, p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    n integer;
BEGIN
    PERFORM ledger_auth_check_actor(p_actor);
    UPDATE ledger_tokens SET revoked_at = now()
        WHERE token_id = p_token_id AND revoked_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN false;
    END IF;
    INSERT INTO ledger_auth_log (actor, action, target) VALUES (p_actor, 'token.revoke', p_token_id);
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION ledger_auth_check_actor(text), ledger_auth_create_user(text, text, text),
    ledger_auth_set_disabled(text, boolean, text),
    ledger_auth_create_token(text, text, text, text, text),
    ledger_auth_revoke_token(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_auth_create_user(text, text, text),
    ledger_auth_set_disabled(text, boolean, text),
    ledger_auth_create_token(text, text, text, text, text),
    ledger_auth_revoke_token(text, text) TO ledger_app;
