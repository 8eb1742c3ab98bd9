-- Video (issue 21): a video's duration, and renditions: files made from an original in the
-- background (a video's web MP4 and AV1 WebM, an animation's MP4), queued in their rows like
-- variants: claimed with SKIP LOCKED, kept by heartbeats, retried with backoff.
-- depends: 0006_variant_notify

-- Seconds, from the packets of the stored original; NULL for images.
ALTER TABLE images ADD COLUMN duration double precision;

CREATE TABLE renditions (
    image_id     bigint      NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (name IN ('mp4', 'av1')),
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
    PRIMARY KEY (image_id, name)
);

-- The background looks only at unfinished work.
CREATE INDEX renditions_unfinished ON renditions (updated_at) WHERE state <> 'ready';

-- Animations uploaded before this get their MP4 too, made in the background like any other.
-- Their size: at most 1280 wide, even sides (shared/video/transcode.output_size).
INSERT INTO renditions (image_id, name, width, height)
SELECT id, 'mp4',
       (CASE WHEN width > 1280 THEN 1280 ELSE width END) / 2 * 2,
       GREATEST(2, (CASE WHEN width > 1280 THEN round(height * 1280.0 / width)::int
                         ELSE height END) / 2 * 2)
  FROM images WHERE frames > 1;
