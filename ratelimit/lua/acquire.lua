-- Three-level acquire in one round trip: castiel/ratelimit/window.py explains the algorithm
-- (bucketed sliding window) and backends/base.py:evaluate is the same steps in Python.
-- KEYS[1]      adaptive state hash of the integration {m = multiplier, b = blocked-until ms}
-- KEYS[2..n]   one hash per level: bucket index -> count
-- ARGV[1]      little-endian int32s: cost, buckets, then limit, window ms, adaptive (1 when
--              the provider multiplier applies) of each level — one packed argument, because
--              encoding eleven costs the client more than the whole script costs Redis.
-- Returns, for the common case (admitted at full multiplier), the integer now-ms alone;
-- otherwise "status wait-ms level now-ms multiplier" as one string (a bulk reply parses much
-- faster than an array in the client); level is 1-based, 0 = none.
--   status 1 = admitted (every level consumed), 0 = wait, -1 = cost can never fit,
--          -2 = blocked by the provider.  A refusal writes nothing.
-- Written for the common case (admit): no table is built unless a level refuses or holds
-- expired buckets.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local spec = {struct.unpack(string.rep('i', #ARGV[1] / 4), ARGV[1])}
local cost = spec[1]
local buckets = spec[2]
local st = redis.call('HMGET', KEYS[1], 'm', 'b')
local mult = tonumber(st[1]) or 1
local blocked = tonumber(st[2]) or 0
if blocked > now then
  return string.format('-2 %d 0 %d %s', blocked - now, now, tostring(mult))
end
local worst_wait, worst_level = 0, 0
local fields, ttls = {}, {}
for i = 2, #KEYS do
  local base = 3 + (i - 2) * 3
  local limit = spec[base]
  local window = spec[base + 1]
  if cost > limit then
    return string.format('-1 0 %d %d %s', i - 1, now, tostring(mult))
  end
  if spec[base + 2] == 1 then
    limit = math.max(1, math.floor(limit * mult + 1e-9))
  end
  local width = math.max(1, math.ceil(window / buckets))
  local oldest = math.floor((now - window) / width)
  local flat = redis.call('HGETALL', KEYS[i])
  local used, stale = 0, 0
  for j = 1, #flat, 2 do
    if tonumber(flat[j]) < oldest then
      stale = stale + 1
    else
      used = used + tonumber(flat[j + 1])
    end
  end
  if stale > 0 then
    local expired = {}
    for j = 1, #flat, 2 do
      if tonumber(flat[j]) < oldest then
        expired[#expired + 1] = flat[j]
      end
    end
    redis.call('HDEL', KEYS[i], unpack(expired))
  end
  if used + cost > limit then
    local live = {}
    for j = 1, #flat, 2 do
      local index = tonumber(flat[j])
      if index >= oldest then
        live[#live + 1] = {index, tonumber(flat[j + 1])}
      end
    end
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
  fields[i] = math.floor(now / width)
  ttls[i] = window + width
end
if worst_level > 0 then
  return string.format('0 %d %d %d %s', worst_wait, worst_level, now, tostring(mult))
end
for i = 2, #KEYS do
  -- The expiry only needs setting when a bucket is born: its counts stay live for at most
  -- window + width after that, and older buckets leave the window before it does.
  if redis.call('HINCRBY', KEYS[i], fields[i], cost) == cost then
    redis.call('PEXPIRE', KEYS[i], ttls[i])
  end
end
if mult == 1 then
  return now
end
return string.format('1 0 0 %d %s', now, tostring(mult))
