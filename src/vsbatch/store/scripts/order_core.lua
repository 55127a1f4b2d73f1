-- order_core.lua: per-session FIFO, included by order_gate.lua and claim_row.lua.
--
-- ``older_in_flight(pending, seq, prefix)``: looks at the members of the session's pending set
-- ``pending`` (sorted set: "<bid>:<row>" scored by the row's global seq) older than ``seq``,
-- oldest first. A member whose row is gone (batch expired or discarded) or already terminal
-- is stale: it is removed. A member in a STAGING batch is passed over (its batch may never
-- open; if it does, the row ends superseded when a newer update was applied first). Returns
-- the outcome ("queued", "running", "retrying") of the first other member found, or false
-- when no older update of the session is in flight. At most 100 members are looked at.
-- Row and batch keys are built here from ``prefix`` (on Redis Cluster they share the pending
-- set's slot through the namespace's hash tag, VSBATCH_KEY_PREFIX={vsbatch}; docs/redis.md).

local ORDER_TERMINAL = {succeeded = true, skipped = true, failed = true, rejected = true}

local function older_in_flight(pending, seq, prefix)
  local older = redis.call('ZRANGEBYSCORE', pending, '-inf', '(' .. seq, 'LIMIT', 0, 100)
  for _, member in ipairs(older) do
    local bid, row = string.match(member, '^(.*):(%d+)$')
    local state = bid and redis.call('HGET', prefix .. ':b:' .. bid, 'state')
    local raw = state and redis.call('HGET', prefix .. ':b:' .. bid .. ':rows', row)
    local outcome = raw and cjson.decode(raw).o
    if not outcome or ORDER_TERMINAL[outcome] then
      redis.call('ZREM', pending, member)
    elseif state ~= 'staging' then
      return outcome
    end
  end
  return false
end
