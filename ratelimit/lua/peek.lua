-- Read-only usage of each level (for the admin and the API); writes nothing.
-- KEYS[1] adaptive state hash, KEYS[2..n] level hashes; ARGV[1] sub-buckets per window,
-- ARGV[1 + k] window ms of level k.  Returns {now ms, multiplier, blocked-until ms, used...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local buckets = tonumber(ARGV[1])
local st = redis.call('HMGET', KEYS[1], 'm', 'b')
local result = {now, tostring(tonumber(st[1]) or 1), tonumber(st[2]) or 0}
for i = 2, #KEYS do
  local window = tonumber(ARGV[i])
  local width = math.max(1, math.ceil(window / buckets))
  local oldest = math.floor((now - window) / width)
  local flat = redis.call('HGETALL', KEYS[i])
  local used = 0
  for j = 1, #flat, 2 do
    if tonumber(flat[j]) >= oldest then
      used = used + tonumber(flat[j + 1])
    end
  end
  result[#result + 1] = used
end
return result
