-- order_gate.lua: may this row of a session be sent now? (per-session FIFO)
--
-- KEYS[1]  the session's pending set  <prefix>:pending:<account or ''>:<session_id>
--          (sorted set: "<bid>:<row>" scored by the row's global seq)
-- ARGV[1]  the row's seq
-- ARGV[2]  the key prefix, "<prefix>" (row and batch hashes are <prefix>:b:<bid>[:rows])
--
-- Looks at the members older than the row (lower seq), oldest first. A member whose row is
-- gone (batch expired or discarded) or already terminal is stale: it is removed. A member in
-- a STAGING batch is passed over (its batch may never open; if it does, the row ends
-- superseded when a newer update was applied first). The first other member found returns
-- its outcome ("queued", "running", "retrying"): the row must wait. Returns false when no
-- older update of the session is in flight. At most 100 members are looked at per call.

local TERMINAL = {succeeded = true, skipped = true, failed = true, rejected = true}
local older = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(older) do
  local bid, row = string.match(member, '^(.*):(%d+)$')
  local state = bid and redis.call('HGET', ARGV[2] .. ':b:' .. bid, 'state')
  local raw = state and redis.call('HGET', ARGV[2] .. ':b:' .. bid .. ':rows', row)
  local outcome = raw and cjson.decode(raw).o
  if not outcome or TERMINAL[outcome] then
    redis.call('ZREM', KEYS[1], member)
  elseif state ~= 'staging' then
    return outcome
  end
end
return false
