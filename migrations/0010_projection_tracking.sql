-- Projections (issue 3): tracking tables and runner status.
-- One tracking table per projection, in the exact shape the eventsourcing 9.5 library's
-- PostgresTrackingRecorder creates with single-row tracking (its create_table statement), plus
-- the library's "__migration__" marker row, so that a recorder constructed with CREATE_TABLE=y
-- would find nothing to do. The view change and the tracking row are written in one
-- transaction by ledger.projections.base.ReadModel.process_page.
CREATE TABLE IF NOT EXISTS claims_tracking (
    application_name text,
    notification_id bigint,
    PRIMARY KEY (application_name)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);
INSERT INTO claims_tracking VALUES ('__migration__', 1), ('ledger', 0) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS audit_tracking (
    application_name text,
    notification_id bigint,
    PRIMARY KEY (application_name)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);
INSERT INTO audit_tracking VALUES ('__migration__', 1), ('ledger', 0) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS trends_tracking (
    application_name text,
    notification_id bigint,
    PRIMARY KEY (application_name)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);
INSERT INTO trends_tracking VALUES ('__migration__', 1), ('ledger', 0) ON CONFLICT DO NOTHING;

-- What the runners last did, for `ledger projections status` and the watchdog (not part of
-- any view: never compared, never rebuilt).
CREATE TABLE IF NOT EXISTS projection_status (
    name text PRIMARY KEY,
    last_page_at timestamptz,
    last_page_events integer,
    last_error text,
    last_error_at timestamptz,
    rebuilt_at timestamptz,
    runner text
);
