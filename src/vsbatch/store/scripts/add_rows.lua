-- add_rows.lua: write one chunk of new rows into a STAGING or OPEN batch.
--
-- KEYS[1]  batch hash           <prefix>:b:<bid>  (total, min_row, max_row, state)
-- KEYS[2]  counts hash          <prefix>:b:<bid>:counts
-- KEYS[3]  rows hash            <prefix>:b:<bid>:rows
-- KEYS[4]  sessions hash        <prefix>:b:<bid>:sessions ("<account>:<session_id>" -> row)
-- KEYS[5]  global sequence      <prefix>:seq (INCRBY; never expires)
-- KEYS[6]  events stream        <prefix>:b:<bid>:events (only its TTL is refreshed)
-- KEYS[7]  indexed batches set  <prefix>:indexed (joined by an indexed batch that gets rows)
-- ARGV[1]  retention TTL, whole seconds
-- ARGV[2]  now, seconds since the epoch (the caller's clock), for finished_at
-- ARGV[3]  prefix of the per-session pending sets, "<prefix>:pending:"
-- ARGV[4]  batch id (pending members are "<bid>:<row>")
-- ARGV[5]  staging TTL, whole seconds: the batch's keys get it instead of ARGV[1] while the
--          batch is STAGING, so rows staged by a submit that died (or that Redis stopped
--          accepting half way, with MISCONF) vanish within a day; opening the batch
--          sets ARGV[1].
-- ARGV[6..] one value per row, four parts joined by NUL (codec.encode_new):
--   row number (decimal string);
--   the record's JSON object WITHOUT its closing brace (never "o"/"q"/"c"/"r");
--   "" for a valid row, or the rejection's JSON members ('"c":"col","r":"reason"');
--   session key "<account or ''>:<session_id>" (last: the one part that may hold a NUL).
-- A queued row's record gets "q" but no "o": queued is the default (codec.py).
--
-- A row number already present is left alone (re-adding a chunk after a crash writes
-- nothing twice). A valid row claims its session with HSETNX: the first row gets the next
-- global seq and "queued"; a later row of the same session becomes "rejected" with column
-- "id" and reason "duplicate of row N". Rejected rows do not claim their session.
-- A queued row joins its session's pending set (ARGV[3] .. session key), scored by its seq:
-- per-session FIFO (order_gate.lua); transition.lua removes it when the row is terminal.
-- (The pending keys are derived here, not declared: on Redis Cluster they share the batch's
-- slot through the namespace's hash tag, VSBATCH_KEY_PREFIX={vsbatch}; docs/redis.md.)
-- An indexed batch (field "indexed" of its hash: a file's) has no pending sets: the batch
-- joins KEYS[7] and its sessions hash is where other batches' rows find its rows (see
-- order_core.lua); per row that is one write less and about 120 bytes less.
-- Returns the number of rows written; error replies "NOBATCH" or "BATCHSTATE <state>".

local b = redis.call('HMGET', KEYS[1], 'state', 'indexed', 'max_row')
local state, indexed = b[1], b[2]
-- A row past the batch's highest row number cannot be there yet: a file's rows come in
-- order, so staging one looks nothing up but its session.
local known = tonumber(b[3]) or 0
if not state then
  return redis.error_reply('NOBATCH ' .. KEYS[1])
end
if state ~= 'staging' and state ~= 'open' then
  return redis.error_reply('BATCHSTATE ' .. state)
end

local written, lo, hi = 0, nil, nil
local delta = {}
-- Sequence numbers are taken from a local counter and the key moved once at the end:
-- the script is atomic, so nobody else can INCR in between.
local seq = tonumber(redis.call('GET', KEYS[5]) or '0')
local first_seq = seq
-- Records and session claims are gathered here and written with one HSET each at the end:
-- every write a script makes goes to the append-only file as a command of its own, and
-- one per row cost as much as the rest of the script. The sessions already claimed by
-- earlier calls are read with one HMGET.
local rows, bodies, rejections, sessions, wanted = {}, {}, {}, {}, {}
for i = 6, #ARGV do
  local parts = ARGV[i]
  local a = string.find(parts, '\0', 1, true)
  local b = string.find(parts, '\0', a + 1, true)
  local c = string.find(parts, '\0', b + 1, true)
  local k = #rows + 1
  rows[k] = string.sub(parts, 1, a - 1)
  bodies[k] = string.sub(parts, a + 1, b - 1)
  rejections[k] = string.sub(parts, b + 1, c - 1)
  sessions[k] = string.sub(parts, c + 1)
  if rejections[k] == '' then wanted[#wanted + 1] = sessions[k] end
end
local taken = {}
if #wanted > 0 then
  local found = redis.call('HMGET', KEYS[4], unpack(wanted))
  for k, session in ipairs(wanted) do
    if found[k] then taken[session] = found[k] end
  end
end
local records, claims = {}, {}
for k, row in ipairs(rows) do
  if not records[row] and (tonumber(row) > known or redis.call('HEXISTS', KEYS[3], row) == 0) then
    local body = bodies[k]
    if body ~= '{' then body = body .. ',' end
    local outcome, tail = 'rejected', nil
    if rejections[k] ~= '' then
      tail = '"o":"rejected",' .. rejections[k]
    else
      local session = sessions[k]
      local first = taken[session]
      if first then
        tail = '"o":"rejected","c":"id","r":' .. cjson.encode('duplicate of row ' .. first)
      else
        outcome = 'queued'
        seq = seq + 1
        tail = '"q":' .. string.format('%d', seq)
        taken[session] = row
        claims[#claims + 1] = session
        claims[#claims + 1] = row
        if not indexed then
          local pending = ARGV[3] .. session
          redis.call('ZADD', pending, seq, ARGV[4] .. ':' .. row)
          redis.call('EXPIRE', pending, ARGV[1])
        end
      end
    end
    records[row] = true
    records[#records + 1] = row
    records[#records + 1] = body .. tail .. '}'
    delta[outcome] = (delta[outcome] or 0) + 1
    written = written + 1
    local n = tonumber(row)
    if lo == nil or n < lo then lo = n end
    if hi == nil or n > hi then hi = n end
  end
end
if #records > 0 then redis.call('HSET', KEYS[3], unpack(records)) end
if #claims > 0 then redis.call('HSET', KEYS[4], unpack(claims)) end

if seq > first_seq then redis.call('INCRBY', KEYS[5], seq - first_seq) end
if written > 0 then
  for outcome, n in pairs(delta) do redis.call('HINCRBY', KEYS[2], outcome, n) end
  local total = redis.call('HINCRBY', KEYS[1], 'total', written)
  if indexed and delta['queued'] then
    -- No TTL: a batch may stay open past the retention time (its keys are refreshed as its
    -- rows move); it leaves the set when it ends, is discarded, or is found gone.
    redis.call('SADD', KEYS[7], ARGV[4])
  end
  b = redis.call('HMGET', KEYS[1], 'min_row', 'max_row')
  if not b[1] or lo < tonumber(b[1]) then redis.call('HSET', KEYS[1], 'min_row', lo) end
  if not b[2] or hi > tonumber(b[2]) then redis.call('HSET', KEYS[1], 'max_row', hi) end
  if state == 'open' then
    -- Rows added to an open batch may all be rejected: the batch may be complete now.
    local c = redis.call('HMGET', KEYS[2], 'succeeded', 'skipped', 'failed', 'rejected')
    local done = 0
    for _, n in ipairs(c) do done = done + (tonumber(n) or 0) end
    if done == total then
      redis.call('HSET', KEYS[1], 'state', 'done', 'finished_at', ARGV[2])
    end
  end
end

local ttl = ARGV[1]
if state == 'staging' then ttl = ARGV[5] end
for _, i in ipairs({1, 2, 3, 4, 6}) do redis.call('EXPIRE', KEYS[i], ttl) end
return written
