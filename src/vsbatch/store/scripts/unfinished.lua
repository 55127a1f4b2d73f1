-- unfinished.lua: the batch's rows not terminal yet, in a block of row numbers, as runs.
--
-- KEYS[1]  rows hash            <prefix>:b:<bid>:rows
-- ARGV[1]  first row number to look at
-- ARGV[2]  last row number to look at (inclusive)
--
-- Returns {first1, last1, first2, last2, ...}: the runs of consecutive row numbers whose rows
-- exist and are not terminal, in order. What ``resume`` and a submit enqueue: a staged file
-- is a few runs, so a million rows cost Python no record and almost no number to decode. A
-- record without "o" is queued (codec.py): it is kept without decoding it. Read-only.

local TERMINAL = {succeeded = true, skipped = true, failed = true, rejected = true}
local out, last = {}, nil
for n = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local raw = redis.call('HGET', KEYS[1], string.format('%d', n))
  -- A record with no '"o":"' anywhere has no outcome key: queued. Else decode it (the text
  -- may also be inside a metadata value).
  if raw and (not string.find(raw, '"o":"', 1, true)
      or not TERMINAL[cjson.decode(raw).o or 'queued']) then
    if last == n - 1 then
      out[#out] = n
    else
      out[#out + 1] = n
      out[#out + 1] = n
    end
    last = n
  end
end
return out
