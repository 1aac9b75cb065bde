-- Metadata of every account's resources. Every table is keyed by account first:
-- accounts never see each other's rows.
CREATE TABLE groups (
  account TEXT NOT NULL,
  name TEXT NOT NULL,
  region TEXT NOT NULL,
  container_type TEXT NOT NULL,
  container_count INTEGER NOT NULL,
  allocate_on_start INTEGER NOT NULL,
  state INTEGER NOT NULL, -- 0 idle, 1 running, 2 stopped by the user
  create_time TEXT NOT NULL,
  update_time TEXT NOT NULL,
  PRIMARY KEY (account, name)
) STRICT;

CREATE TABLE repos (
  account TEXT NOT NULL,
  name TEXT NOT NULL,
  -- storage id: the repo log lives under <account>/<name>.<uid>, so a repo
  -- re-created under an old name never sees the old data
  uid TEXT NOT NULL,
  region TEXT NOT NULL,
  group_name TEXT,
  schema_json TEXT NOT NULL,
  derived_from TEXT,
  extra_json TEXT NOT NULL DEFAULT '{}',
  create_time TEXT NOT NULL,
  update_time TEXT NOT NULL,
  PRIMARY KEY (account, name)
) STRICT;

CREATE TABLE transforms (
  account TEXT NOT NULL,
  repo TEXT NOT NULL,
  name TEXT NOT NULL,
  dest_repo TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  -- 1 when the destination repo was created by this transform (deleted with it)
  created_dest INTEGER NOT NULL,
  create_time TEXT NOT NULL,
  update_time TEXT NOT NULL,
  PRIMARY KEY (account, repo, name)
) STRICT;
CREATE INDEX transforms_dest ON transforms (account, dest_repo);

CREATE TABLE exports (
  account TEXT NOT NULL,
  repo TEXT NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  create_time TEXT NOT NULL,
  update_time TEXT NOT NULL,
  PRIMARY KEY (account, repo, name)
) STRICT;

CREATE TABLE plugins (
  account TEXT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  size INTEGER NOT NULL,
  md5 TEXT NOT NULL,
  create_time TEXT NOT NULL,
  PRIMARY KEY (account, name)
) STRICT;

-- Committed read positions of consumers (transforms, exports) in repo logs.
CREATE TABLE offsets (
  account TEXT NOT NULL,
  consumer TEXT NOT NULL,
  log_key TEXT NOT NULL,
  next_offset INTEGER NOT NULL,
  state_json TEXT NOT NULL DEFAULT '{}',
  update_time TEXT NOT NULL,
  PRIMARY KEY (account, consumer)
) STRICT;
