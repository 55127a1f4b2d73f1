-- claim_file.lua: claim a CSV file's content for one batch, unless a live batch holds it.
--
-- KEYS[1]  the claim      <prefix>:file:<account>:<digest>  (string: a batch id)
-- ARGV[1]  prefix of the batch hashes, "<prefix>:b:"
-- ARGV[2]  the claiming batch's id (a STAGING batch that already exists)
-- ARGV[3]  TTL of the claim, whole seconds (the ledger's retention)
--
-- The claim is held while the batch it names is staging or open: a batch that is done,
-- canceled, discarded or expired holds nothing, so the next submit of the file takes the
-- claim over. Reading the holder's state and taking the claim in one script is what makes
-- two submits of one file started together accept exactly one batch.
-- Returns the id of the batch that holds the claim: ARGV[2] when the claim is taken.

local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[2] then
  local state = redis.call('HGET', ARGV[1] .. held, 'state')
  if state == 'staging' or state == 'open' then
    return held
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return ARGV[2]
