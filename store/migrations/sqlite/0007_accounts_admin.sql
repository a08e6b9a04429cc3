-- Operators' keys: they sign the admin API (deposits, withdrawals, balances,
-- audit) and nothing else. A separate table from `api_keys`, so a trading
-- key can never act as an operator, nor an operator's key trade.
CREATE TABLE admin_keys (
    admin_key  TEXT   PRIMARY KEY,
    secret     TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- Operators name a deposit or withdrawal with text; the risk stage takes a
-- number. Each text gets its number once, here, so a retried movement
-- carries the same number after a restart or through another gateway, and
-- the risk stage sees it as a duplicate.
CREATE TABLE movement_refs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    reference TEXT    NOT NULL UNIQUE
);
