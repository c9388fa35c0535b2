-- Apply provider feedback to an integration's adaptive state atomically (see
-- backends/base.py:Adjustment).  KEYS[1] state hash.
-- ARGV: scale, target ('' = none), step, block seconds, minimum multiplier, ttl ms.
-- Returns {multiplier, blocked-until ms (0 = none)}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = redis.call('HMGET', KEYS[1], 'm', 'b')
local m = (tonumber(st[1]) or 1) * tonumber(ARGV[1])
if ARGV[2] ~= '' then
  m = math.min(tonumber(ARGV[2]), m + tonumber(ARGV[3]))
else
  m = m + tonumber(ARGV[3])
end
m = math.min(1, math.max(tonumber(ARGV[5]), m))
m = math.floor(m * 1000000 + 0.5) / 1000000
local blocked = tonumber(st[2]) or 0
local block = tonumber(ARGV[4])
if block > 0 then
  blocked = math.max(blocked, now + math.floor(block * 1000))
end
if blocked <= now then
  blocked = 0
end
if m >= 1 and blocked == 0 then
  redis.call('DEL', KEYS[1])
  return {'1', 0}
end
redis.call('HSET', KEYS[1], 'm', tostring(m))
if blocked > 0 then
  redis.call('HSET', KEYS[1], 'b', blocked)
else
  redis.call('HDEL', KEYS[1], 'b')
end
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[6]), blocked - now))
return {tostring(m), blocked}
