-- row_core.lua: the one copy of "move a row", included (``--#include row_core.lua``) by the
-- scripts that move rows: transition.lua, claim_row.lua, finish_row.lua and cancel_rows.lua;
-- and the one copy of "a record's session key" (session_of).
--
-- K is a table of the batch's keys: batch, counts, rows, events, sessions (Keys.row_script_keys
-- order, KEYS[1..5] of each including script). A row record is the compact JSON of
-- codec.ROW_KEYS (o = outcome, a = account, s = session id, q = seq, ua = updated at); a
-- record without "o" is queued (staging leaves the first outcome out to save memory).

local TERMINAL = {succeeded = true, skipped = true, failed = true, rejected = true}

-- A stored record as a table, its outcome filled in.
local function read_record(raw)
  local rec = cjson.decode(raw)
  if rec.o == nil then rec.o = 'queued' end
  return rec
end

-- The record's session as Keys.session_field names it: "<account or ''>:<session id>" (the
-- end of its pending set's, lock's and markers' keys).
local function session_of(rec)
  local account = rec.a
  if type(account) ~= 'string' then account = '' end
  return account .. ':' .. (rec.s or '')
end

-- The set of batches whose rows' sessions are found through their sessions hash
-- (order_core.lua), named from the batch's key "<prefix>:b:<bid>".
local function indexed_key(K, bid)
  return string.sub(K[1], 1, #K[1] - #bid - 3) .. ':indexed'
end

-- Refresh the batch keys' retention TTL, but only once it has run down by a hundredth (at
-- least a second): on every transition it cost five EXPIREs per move, twice per row.
local function refresh_ttl(K, ttl)
  ttl = tonumber(ttl)
  local margin = math.max(1, math.floor(ttl / 100))
  if redis.call('TTL', K[1]) < ttl - margin then
    for i = 1, 5 do redis.call('EXPIRE', K[i], ttl) end
  end
end

-- Write ``rec`` (already patched) as row ``row`` in outcome ``to``; move the counters, leave
-- the session's pending set and mark the batch done when it ends; append an event unless
-- ``quiet`` (a row's plain path, queued -> running -> succeeded, is told by its record).
-- ``c`` holds the rest: now, ttl, maxlen, pending prefix, batch id.
local function move_row(K, row, rec, to, c, quiet)
  local from = rec.o
  rec.o = to
  rec.ua = tonumber(c.now)
  redis.call('HSET', K[3], row, cjson.encode(rec))
  if from ~= to then
    redis.call('HINCRBY', K[2], from, -1)
    redis.call('HINCRBY', K[2], to, 1)
  end
  if not quiet then
    redis.call('XADD', K[4], 'MAXLEN', '~', c.maxlen, '*',
      'row', row, 'from', from, 'to', to, 'at', c.now)
    redis.call('EXPIRE', K[4], c.ttl)
  end
  if from ~= to and TERMINAL[to] then
    redis.call('ZREM', c.pending .. session_of(rec), c.bid .. ':' .. row)
    local n = redis.call('HMGET', K[2], 'succeeded', 'skipped', 'failed', 'rejected')
    local done = 0
    for _, v in ipairs(n) do done = done + (tonumber(v) or 0) end
    local b = redis.call('HMGET', K[1], 'total', 'state', 'finished_at')
    if done == tonumber(b[1]) then
      if b[2] == 'open' then
        redis.call('HSET', K[1], 'state', 'done', 'finished_at', c.now)
      elseif b[2] == 'canceled' and not b[3] then
        redis.call('HSET', K[1], 'finished_at', c.now)
      end
      -- The sessions hash finds duplicates while rows are added, and an indexed batch's
      -- unfinished rows for other batches' rows of their session (order_core.lua): a
      -- finished batch needs it for neither, so it goes (about 55 bytes a row).
      redis.call('UNLINK', K[5])
      redis.call('SREM', indexed_key(K, c.bid), c.bid)
    end
  end
  refresh_ttl(K, c.ttl)
end

-- Apply a JSON patch of short keys to ``rec`` (null removes the key).
local function patch_row(rec, patch)
  for k, v in pairs(cjson.decode(patch)) do
    if v == cjson.null then rec[k] = nil else rec[k] = v end
  end
end
