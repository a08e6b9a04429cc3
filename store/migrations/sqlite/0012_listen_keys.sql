-- User data stream listen keys (Binance's /api/v3/userDataStream): one
-- active key per account, valid until expires_at (ms since the epoch) and
-- extended by a keepalive. Shared by every gateway of a cluster, so a key
-- made through one gateway opens a stream on any other. api_key is the key
-- that made it: its stream ends when that key is revoked.
CREATE TABLE listen_keys (
    listen_key TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL UNIQUE,
    api_key    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
