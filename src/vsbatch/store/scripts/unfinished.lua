-- unfinished.lua: the batch's rows not terminal yet, in a block of row numbers, as runs.
--
-- KEYS[1]  rows hash            <prefix>:b:<bid>:rows
-- ARGV[1]  first row number to look at
-- ARGV[2]  last row number to look at (inclusive)
--
-- Returns {first1, last1, account1, first2, last2, account2, ...}: the runs of consecutive
-- row numbers whose rows exist, are not terminal and have one Stripe account ("" for none),
-- in order. What ``resume`` and a submit enqueue (chunks of one account each): a staged file
-- is a few runs, so a million rows cost Python no record and almost no number to decode.
-- Read-only.
--
-- A record without "o" is queued (codec.py) and was written by add_rows.lua as encode_new
-- lays it out: {"s":"<session>","a":"<account>",...}; its account is read off that start.
-- Any other record (moved: cjson rewrote it; or a session or account with escapes) is
-- decoded.

local TERMINAL = {succeeded = true, skipped = true, failed = true, rejected = true}

-- The row's account ("" for none), or nil when the row is terminal.
local function unfinished_account(raw)
  if not string.find(raw, '"o":"', 1, true) then
    local account = string.match(raw, '^{"s":"[%w_]*","a":"([%w_]*)"')
    if account then return account end
    if string.match(raw, '^{"s":"[%w_]*","[^a]') then return '' end
  end
  local rec = cjson.decode(raw)
  if TERMINAL[rec.o or 'queued'] then return nil end
  if type(rec.a) == 'string' then return rec.a end
  return ''
end

local out = {}
local last, last_account = nil, nil
for n = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local raw = redis.call('HGET', KEYS[1], string.format('%d', n))
  local account = raw and unfinished_account(raw)
  if account then
    if last == n - 1 and last_account == account then
      out[#out - 1] = n
    else
      out[#out + 1] = n
      out[#out + 1] = n
      out[#out + 1] = account
    end
    last, last_account = n, account
  end
end
return out
