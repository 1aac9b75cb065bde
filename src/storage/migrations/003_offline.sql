-- Offline: datasources, jobs, job exports, user variables and job runs.
-- Keyed by account first, like every other table.
CREATE TABLE offline_datasources (
  account TEXT NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  schema_json TEXT NOT NULL,
  extra_json TEXT NOT NULL DEFAULT '{}',
  create_time TEXT NOT NULL,
  update_time TEXT NOT NULL,
  PRIMARY KEY (account, name)
) STRICT;

CREATE TABLE offline_jobs (
  account TEXT NOT NULL,
  name TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  -- 1 after actions/stop: scheduled runs are paused until actions/start
  paused INTEGER NOT NULL DEFAULT 0,
  create_time TEXT NOT NULL,
  update_time TEXT NOT NULL,
  PRIMARY KEY (account, name)
) STRICT;

CREATE TABLE offline_job_exports (
  account TEXT NOT NULL,
  job TEXT NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  create_time TEXT NOT NULL,
  update_time TEXT NOT NULL,
  PRIMARY KEY (account, job, name)
) STRICT;

CREATE TABLE offline_variables (
  account TEXT NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  format TEXT NOT NULL,
  create_time TEXT NOT NULL,
  PRIMARY KEY (account, name)
) STRICT;

-- One row per batch of a job; a rerun updates its row and bumps rerun_count.
CREATE TABLE offline_runs (
  account TEXT NOT NULL,
  job TEXT NOT NULL,
  run_id INTEGER NOT NULL,
  batch_time INTEGER NOT NULL, -- epoch ms, immutable
  queue_time INTEGER NOT NULL, -- when the batch was added (scheduler lateness)
  status TEXT NOT NULL,
  start_time INTEGER,
  end_time INTEGER,
  message TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL DEFAULT '{}',
  rerun_count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (account, job, run_id)
) STRICT;
CREATE INDEX offline_runs_status ON offline_runs (status);
