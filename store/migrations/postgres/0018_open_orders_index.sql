-- A user's open orders (`openOrders`) are read through an index of open
-- orders only. The index of every order by (user, status, pair) it
-- replaces was rewritten at each status change and grew with the whole
-- history, so each insert landed on a cold page of a large index; an
-- order now enters this one when accepted and leaves it when it closes,
-- and it stays as small as the books. The predicate is the query's own
-- (`OPEN_STATUSES` in store/src/queries.rs), which is what lets the
-- planner use it.
DROP INDEX orders_by_user;
CREATE INDEX orders_open_by_user ON orders (user_id, created_at, order_id)
    WHERE status IN ('NEW', 'PARTIALLY_FILLED', 'PENDING_NEW');
