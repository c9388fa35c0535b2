-- Add counts a process took locally while Redis was unreachable to the shared hash of one
-- level (castiel/ratelimit/limiter.py, "copy-back"), so the window after an outage knows
-- what was sent during it.
-- KEYS[1]   the level's hash: bucket index -> count
-- ARGV[1]   ms the counts must stay live (the key's expiry is only ever extended)
-- ARGV[2..] bucket index, count, bucket index, count, ...
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
