-- release_file.lua: drop a CSV file's claim if it still names the given batch.
--
-- KEYS[1]  the claim      <prefix>:file:<account>:<digest>  (string: a batch id)
-- ARGV[1]  the batch whose claim ends (a staged batch being discarded)
--
-- A refused or failed submit leaves nothing behind; a claim another batch took since is kept.
-- Returns 1 when the claim was dropped, 0 otherwise.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
