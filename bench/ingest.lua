-- wrk script: POST /api/batch with 5 events, unique event ids per request, the way the
-- tracker sends them (text/plain beacon). Same script for Footfall and the bare baseline.
local counter = 0
local thread_tag = 0

function setup(thread)
  thread_tag = thread_tag + 1
  thread:set("tag", thread_tag)
end

function init(args)
  math.randomseed(os.time() + (tag or 0) * 7919)
  prefix = string.format("b%06x%02x", math.random(0, 0xffffff), tag or 0)
end

function request()
  counter = counter + 1
  local events = {}
  for i = 1, 5 do
    events[i] = string.format(
      '{"event":"page_view","eventId":"%s-%09d-%d","page":"https://bench.test/p/%d?utm_source=wrk","sessionId":"s%d","timezone":"Europe/Berlin"}',
      prefix, counter, i, counter % 50, counter % 1000)
  end
  local body = '{"site":"bench.test","events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", "/api/batch", {
    ["Content-Type"] = "text/plain;charset=UTF-8",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
  }, body)
end
