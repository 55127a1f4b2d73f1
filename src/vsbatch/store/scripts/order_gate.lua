-- order_gate.lua: may this row of a session be sent now? (per-session FIFO)
--
-- KEYS[1]  the session's pending set  <prefix>:pending:<account or ''>:<session_id>
--          (sorted set: "<bid>:<row>" scored by the row's global seq)
-- ARGV[1]  the row's seq
-- ARGV[2]  the key prefix, "<prefix>" (row and batch hashes are <prefix>:b:<bid>[:rows])
-- ARGV[3]  the session's key "<account or ''>:<session_id>" (the field of sessions hashes)
-- ARGV[4]  the row's batch id
--
-- Returns the outcome of an older update of the session still in flight, or false (see
-- order_core.lua).

--#include order_core.lua

return older_in_flight(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
