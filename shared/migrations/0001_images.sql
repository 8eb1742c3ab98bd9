-- Images and their variants. Tokens come from memorable names; uniqueness is enforced here.
-- depends:

CREATE TABLE images (
    id                bigserial PRIMARY KEY,
    token             text        NOT NULL UNIQUE,
    name              text        NOT NULL,
    sha256            bytea       NOT NULL UNIQUE,
    storage_key       text        NOT NULL UNIQUE,
    filename          text        NOT NULL,
    content_type      text        NOT NULL,
    width             integer     NOT NULL CHECK (width > 0),
    height            integer     NOT NULL CHECK (height > 0),
    bytes             bigint      NOT NULL CHECK (bytes > 0),
    frames            integer     NOT NULL DEFAULT 1,
    delete_token_hash bytea       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE variants (
    image_id     bigint      NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind IN ('tiny', 'large', 'monstrous')),
    width        integer     NOT NULL,
    height       integer     NOT NULL,
    bytes        bigint,
    state        text        NOT NULL DEFAULT 'pending'
                             CHECK (state IN ('pending', 'working', 'ready', 'failed')),
    attempts     integer     NOT NULL DEFAULT 0,
    renders      integer     NOT NULL DEFAULT 0,
    error        text,
    claimed_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, kind)
);

-- The reconciler looks only at unfinished work.
CREATE INDEX variants_unfinished ON variants (updated_at) WHERE state <> 'ready';
