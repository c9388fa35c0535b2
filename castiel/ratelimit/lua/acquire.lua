-- Three-level acquire in one round trip: castiel/ratelimit/window.py explains the algorithm
-- (bucketed sliding window) and backends/base.py:evaluate is the same steps in Python.
-- KEYS[1]      adaptive state hash of the integration {m = multiplier, b = blocked-until ms}
-- KEYS[2..n]   one hash per level: bucket index -> count
-- ARGV[1]      cost
-- ARGV[2]      sub-buckets per window
-- ARGV[3 + 3k], ARGV[4 + 3k], ARGV[5 + 3k]   limit, window ms, adaptive (1/0) of level k
-- Returns {status, wait ms, level (1-based, 0 = none), now ms, multiplier}
--   status 1 = admitted (every level consumed), 0 = wait, -1 = cost can never fit,
--          -2 = blocked by the provider.  A refusal writes nothing.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local buckets = tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'm', 'b')
local mult = tonumber(st[1]) or 1
local blocked = tonumber(st[2]) or 0
if blocked > now then
  return {-2, blocked - now, 0, now, tostring(mult)}
end
local worst_wait, worst_level = 0, 0
local plan = {}
for i = 2, #KEYS do
  local base = 3 + (i - 2) * 3
  local limit = tonumber(ARGV[base])
  local window = tonumber(ARGV[base + 1])
  if cost > limit then
    return {-1, 0, i - 1, now, tostring(mult)}
  end
  if ARGV[base + 2] == '1' then
    limit = math.max(1, math.floor(limit * mult + 1e-9))
  end
  local width = math.max(1, math.ceil(window / buckets))
  local oldest = math.floor((now - window) / width)
  local flat = redis.call('HGETALL', KEYS[i])
  local used = 0
  local live = {}
  local stale = {}
  for j = 1, #flat, 2 do
    local index = tonumber(flat[j])
    local count = tonumber(flat[j + 1])
    if index < oldest then
      stale[#stale + 1] = flat[j]
    else
      used = used + count
      live[#live + 1] = {index, count}
    end
  end
  if #stale > 0 then
    redis.call('HDEL', KEYS[i], unpack(stale))
  end
  if used + cost > limit then
    table.sort(live, function(a, b) return a[1] < b[1] end)
    local wait = window
    local freed = 0
    for _, entry in ipairs(live) do
      freed = freed + entry[2]
      if used - freed + cost <= limit then
        wait = (entry[1] + 1) * width + window - now
        break
      end
    end
    if wait > worst_wait then
      worst_wait = wait
      worst_level = i - 1
    end
  end
  plan[#plan + 1] = {KEYS[i], math.floor(now / width), window + width}
end
if worst_level > 0 then
  return {0, worst_wait, worst_level, now, tostring(mult)}
end
for _, p in ipairs(plan) do
  redis.call('HINCRBY', p[1], p[2], cost)
  redis.call('PEXPIRE', p[1], p[3])
end
return {1, 0, 0, now, tostring(mult)}
