-- wrk script for `python -m bench webhooks`: every request is a distinct, pre-signed GitHub
-- delivery. bench/wrk.py writes one file per wrk thread (deliveries-<n>.bin: a header line
-- "<delivery id> <hex signature> <body length>", the body, a newline — repeated); each thread
-- streams its own file, so no delivery is sent twice and nothing is signed here.
-- Arguments (after --): <folder> <path> <pause ms per request and connection, 0 = none>.

local count = 0
local threads = {}

function setup(thread)
  thread:set("id", count)
  count = count + 1
  table.insert(threads, thread)
end

function init(args)
  folder, target, pause = args[1], args[2], tonumber(args[3] or "0")
  source = assert(io.open(folder .. "/deliveries-" .. id .. ".bin", "rb"))
  sent, wrapped, s2xx, s4xx, s5xx = 0, 0, 0, 0, 0
end

function response(status, headers, body)
  if status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  elseif status >= 200 and status < 300 then s2xx = s2xx + 1 end
end

function delay()
  return pause
end

function request()
  local header = source:read("*l")
  if header == nil then -- out of deliveries: start again (the bench reports it)
    source:seek("set", 0)
    wrapped = wrapped + 1
    header = source:read("*l")
  end
  local delivery, signature, length = header:match("^(%S+) (%S+) (%d+)$")
  local body = source:read(tonumber(length))
  source:read(1)
  sent = sent + 1
  return wrk.format("POST", target, {
    ["Content-Type"] = "application/json",
    ["X-Hub-Signature-256"] = "sha256=" .. signature,
    ["X-GitHub-Event"] = "issues",
    ["X-GitHub-Delivery"] = delivery,
  }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local wraps, ok, client, server = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    wraps = wraps + thread:get("wrapped")
    ok = ok + thread:get("s2xx")
    client = client + thread:get("s4xx")
    server = server + thread:get("s5xx")
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_2xx": %d, "status_4xx": %d, ' ..
    '"status_5xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, ' ..
    '"wrapped": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, ok, client, server, e.connect, e.read, e.write,
    e.timeout, wraps, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
