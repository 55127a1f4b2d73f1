-- order_core.lua: per-session FIFO, included by order_gate.lua and claim_row.lua.
--
-- ``older_in_flight(pending, seq, prefix, session, bid, staging_too)``: the outcome ("queued",
-- "running", "retrying") of an update of the session older than ``seq`` (the row's global seq)
-- still in flight in another batch that is not STAGING (with ``staging_too``, in any other
-- batch), or false when there is none. Two places hold
-- a session's unfinished rows:
--
-- - its pending set ``pending`` (sorted set: "<bid>:<row>" scored by the row's seq), for rows
--   of batches that are not indexed (an application's one-row batches). At most 100 members
--   older than ``seq`` are looked at, oldest first; a member whose row is gone (batch expired
--   or discarded) or already terminal is stale: it is removed.
-- - the sessions hash of each indexed batch ("<prefix>:indexed", a set of batch ids: files,
--   whose rows join no pending set, which would cost more memory than the row itself). A
--   batch gone from Redis is removed from the set; a batch leaves it when its last row ends.
--
-- A row in a STAGING batch is passed over (its batch may never open; if it does, the row
-- ends superseded when a newer update was applied first). Row and batch keys are built here
-- from ``prefix`` (on Redis Cluster they share the pending set's slot through the
-- namespace's hash tag, VSBATCH_KEY_PREFIX={vsbatch}; docs/redis.md). A record without "o"
-- is queued (codec.py).

local ORDER_TERMINAL = {succeeded = true, skipped = true, failed = true, rejected = true}

local function outcome_of(raw)
  return raw and (cjson.decode(raw).o or 'queued')
end

local function older_in_pending_set(pending, seq, prefix, staging_too)
  local older = redis.call('ZRANGEBYSCORE', pending, '-inf', '(' .. seq, 'LIMIT', 0, 100)
  for _, member in ipairs(older) do
    local bid, row = string.match(member, '^(.*):(%d+)$')
    local state = bid and redis.call('HGET', prefix .. ':b:' .. bid, 'state')
    local outcome = state and outcome_of(redis.call('HGET', prefix .. ':b:' .. bid .. ':rows', row))
    if not outcome or ORDER_TERMINAL[outcome] then
      redis.call('ZREM', pending, member)
    elseif staging_too or state ~= 'staging' then
      return outcome
    end
  end
  return false
end

local function older_in_indexed(seq, prefix, session, bid, staging_too)
  local indexed = prefix .. ':indexed'
  for _, other in ipairs(redis.call('SMEMBERS', indexed)) do
    if other ~= bid then
      local batch = prefix .. ':b:' .. other
      local state = redis.call('HGET', batch, 'state')
      if not state then
        redis.call('SREM', indexed, other)
      elseif staging_too or state ~= 'staging' then
        local row = redis.call('HGET', batch .. ':sessions', session)
        local raw = row and redis.call('HGET', batch .. ':rows', row)
        if raw then
          local rec = cjson.decode(raw)
          local outcome = rec.o or 'queued'
          if not ORDER_TERMINAL[outcome] and (tonumber(rec.q) or 0) < tonumber(seq) then
            return outcome
          end
        end
      end
    end
  end
  return false
end

local function older_in_flight(pending, seq, prefix, session, bid, staging_too)
  return older_in_pending_set(pending, seq, prefix, staging_too)
    or older_in_indexed(seq, prefix, session, bid, staging_too)
end
