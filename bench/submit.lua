-- wrk script: POST a unique declaration per request (LRN made from thread id and a counter).
local counter = 0
local threads = {}
-- thread_id is a global set per thread by setup() (a local here would shadow it: every thread would be 0)

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = io.open(os.getenv("SC_BENCH_BODY"), "r")
  template = f:read("*a")
  f:close()
  run_tag = os.getenv("SC_BENCH_RUN") or "r"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("SC_BENCH_TOKEN")
end

function request()
  counter = counter + 1
  local body = template:gsub("__LRN__", run_tag .. "-" .. thread_id .. "-" .. counter)
  return wrk.format("POST", "/declarations", nil, body)
end

function response(status, headers, body)
  if status ~= 201 then
    errors_seen = (errors_seen or 0) + 1
  end
end
