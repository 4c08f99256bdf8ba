-- raftlock's script sandbox, run once in each new Lua state with the real globals.
-- It receives `rust`, a table of helpers written in Rust, and returns the runner that
-- calls a script function under the error handler.
--
-- Scripts see a proxy of the globals: reading a missing global is an error, writing
-- any is an error, and every library table is a read-only proxy too. Nothing a script
-- does can outlive it, which is what keeps the shared Lua state of a node from making
-- its replies differ from another node's.

local rust = ...
local G = _G
local type, tostring, error, select, rawget, rawset, setmetatable, getmetatable, setfenv =
    type, tostring, error, select, rawget, rawset, setmetatable, getmetatable, setfenv
local raw_pcall, raw_xpcall, raw_loadstring = pcall, xpcall, loadstring
local raw_resume = coroutine.resume
local floor, ceil = math.floor, math.ceil
local raw_rep = string.rep
local raw_insert, raw_remove, raw_sort = table.insert, table.remove, table.sort
local killed, charge = rust.killed, rust.charge
-- The functions that act on the current run (setresp, math.random's state) live here;
-- the engine puts them in once, and they reach whichever run is current. redis.call and
-- redis.pcall are Rust functions the engine puts straight into the redis table once: a C
-- function keeps its Lua caller's frame even in `return redis.call(...)`, so its errors
-- can name the line.
-- redis.call raises a Lua error Rust cannot shape, and leaves the error table Redis
-- raises in `ctx.pending`; every place that catches an error swaps the one for the other.
local ctx = rust.ctx

local function translate(e)
    if type(e) == "userdata" then
        local pending = rawget(ctx, "pending")
        if pending ~= nil then
            rawset(ctx, "pending", nil)
            return pending
        end
    end
    return e
end

local READONLY = "Attempt to modify a readonly table"
local protected = {}

local function refuse_write()
    error(READONLY, 2)
end

local function readonly_proxy(t)
    local proxy = setmetatable({}, { __index = t, __newindex = refuse_write, __metatable = false })
    protected[proxy] = true
    return proxy
end

local function writable(t)
    if protected[t] then
        error(READONLY, 3)
    end
    return t
end

-- An error as redis.call raises it: a table with an `err` field holding the code and text.
local function err_table(msg)
    return { err = "ERR " .. msg }
end

-- Library functions that could write into a read-only proxy without its metamethods.
G.rawset = function(t, k, v)
    return rawset(writable(t), k, v)
end
table.insert = function(t, ...)
    return raw_insert(writable(t), ...)
end
table.remove = function(t, ...)
    return raw_remove(writable(t), ...)
end
table.sort = function(t, ...)
    return raw_sort(writable(t), ...)
end

-- string.rep can build a large string in one instruction: its bytes count against the
-- instruction budget, so a loop of them is stopped as surely as a plain loop.
string.rep = function(s, n, ...)
    if type(s) == "string" and type(n) == "number" and n > 0 then
        charge(#s * n)
    end
    return raw_rep(s, n, ...)
end

-- tostring without addresses: `table: 0x55d1...` would differ from node to node, and a
-- script could return it or write it. A __tostring metamethod still applies.
local raw_tostring = tostring
local ADDRESSED = { table = true, ["function"] = true, thread = true, userdata = true }
tostring = function(v)
    local t = type(v)
    if ADDRESSED[t] then
        local mt = getmetatable(v)
        if type(mt) == "table" and rawget(mt, "__tostring") ~= nil then
            return raw_tostring(v)
        end
        return t .. ": (address hidden)"
    end
    return raw_tostring(v)
end
G.tostring = tostring

-- pcall as Redis 7 has it: an error table comes back as its message. A script killed
-- for its instruction budget stays killed: no pcall, xpcall or resume can catch that.
local function pcall_result(ok, ...)
    if ok then
        return ok, ...
    end
    local e = translate((...))
    if killed() then
        error(e, 0)
    end
    if type(e) == "table" then
        local msg = e.err
        if type(msg) == "string" or type(msg) == "number" then
            e = msg
        end
    end
    return false, e
end
G.pcall = function(...)
    return pcall_result(raw_pcall(...))
end

local function rethrow_if_killed(ok, ...)
    if not ok then
        if killed() then
            error((...), 0)
        end
        return ok, translate((...))
    end
    return ok, ...
end
G.xpcall = function(f, h)
    if type(h) == "function" then
        return rethrow_if_killed(raw_xpcall(f, function(e)
            return h(translate(e))
        end))
    end
    return rethrow_if_killed(raw_xpcall(f, h))
end
coroutine.resume = function(...)
    return rethrow_if_killed(raw_resume(...))
end

-- math.random as Redis has it (its own rand48, reseeded before every script), so the
-- sequence is the same on every node.
local function checkint(v, n, fname)
    local x = tonumber(v)
    if x == nil then
        error("bad argument #" .. n .. " to '" .. fname .. "' (number expected, got " .. type(v) .. ")", 3)
    end
    if x >= 0 then
        return floor(x)
    end
    return ceil(x)
end
math.random = function(...)
    local r = ctx.rand()
    local n = select("#", ...)
    if n == 0 then
        return r
    elseif n == 1 then
        local u = checkint((...), 1, "random")
        if u < 1 then
            error("bad argument #1 to 'random' (interval is empty)", 2)
        end
        return floor(r * u) + 1
    elseif n == 2 then
        local l, u = ...
        l = checkint(l, 1, "random")
        u = checkint(u, 2, "random")
        if l > u then
            error("bad argument #2 to 'random' (interval is empty)", 2)
        end
        return floor(r * (u - l + 1)) + l
    end
    error("wrong number of arguments", 2)
end
math.randomseed = function(seed)
    ctx.srand(checkint(seed, 1, "randomseed"))
end

local redis = {}
redis.setresp = function(...)
    if select("#", ...) ~= 1 then
        error(err_table("redis.setresp() requires one argument."))
    end
    local resp = tonumber((...))
    if resp ~= 2 and resp ~= 3 then
        error(err_table("RESP version must be 2 or 3."))
    end
    ctx.setresp(resp)
end
redis.sha1hex = function(...)
    local s = ...
    if select("#", ...) ~= 1 or (type(s) ~= "string" and type(s) ~= "number") then
        error(err_table("wrong number of arguments"))
    end
    return rust.sha1hex(tostring(s))
end
redis.error_reply = function(...)
    local msg = ...
    if select("#", ...) ~= 1 or type(msg) ~= "string" then
        return err_table("wrong number or type of arguments")
    end
    return { err = rust.error_text(msg) }
end
redis.status_reply = function(...)
    local msg = ...
    if select("#", ...) ~= 1 or type(msg) ~= "string" then
        return err_table("wrong number or type of arguments")
    end
    return { ok = msg }
end
-- redis.log checks its arguments as Redis does, then drops the message: the state
-- machine writes nothing outside itself.
redis.log = function(...)
    local argc = select("#", ...)
    if argc < 2 then
        error(err_table("redis.log() requires two arguments or more."))
    end
    local level = tonumber((...))
    if level == nil then
        error(err_table("First argument must be a number (log level)."))
    end
    if level < 0 or level > 3 then
        error(err_table("Invalid debug level."))
    end
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
-- Replication flags: every script is one Raft entry, replicated whole, so they change
-- nothing; they are accepted for scripts written for Redis.
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.set_repl = function(...)
    if select("#", ...) ~= 1 then
        error(err_table("redis.set_repl() requires two arguments."))
    end
    local flags = tonumber((...))
    if flags == nil or flags < 0 or flags > 3 or flags ~= floor(flags) then
        error(err_table("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."))
    end
end
redis.replicate_commands = function()
    return true
end
redis.acl_check_cmd = function(...)
    if select("#", ...) == 0 then
        error(err_table("Please specify at least one argument for this redis lib call"))
    end
    if not rust.command_exists((...)) then
        error(err_table("Invalid command passed to redis.acl_check_cmd()"))
    end
    return true
end
redis.REDIS_VERSION = rust.version
redis.REDIS_VERSION_NUM = rust.version_num

local raw_encode, raw_decode = rust.cjson_encode, rust.cjson_decode
G.cjson = {
    encode = function(...)
        if select("#", ...) ~= 1 then
            error("bad argument #1 to 'encode' (expected 1 argument)", 2)
        end
        local s, e = raw_encode((...))
        if e then
            error(e, 2)
        end
        return s
    end,
    decode = function(...)
        local s = ...
        if select("#", ...) ~= 1 then
            error("bad argument #1 to 'decode' (expected 1 argument)", 2)
        end
        if type(s) ~= "string" and type(s) ~= "number" then
            error("bad argument #1 to 'decode' (string expected, got " .. type(s) .. ")", 2)
        end
        local v, e = raw_decode(tostring(s))
        if e then
            error(e, 2)
        end
        return v
    end,
    null = rust.cjson_null,
}
G.redis = redis

-- LuaBitOp's `bit` and lua-cmsgpack's `cmsgpack`, as Redis embeds them (bitop.rs,
-- cmsgpack.rs). Their errors name the script's line, as luaL_argerror's do.
local raw_bit = rust.bit
local bit = {}
for _, name in ipairs(rust.bit_names) do
    bit[name] = function(...)
        local r, e = raw_bit(name, ...)
        if e then
            error(e, 2)
        end
        return r
    end
end
G.bit = bit
local raw_pack, raw_unpack = rust.msgpack_pack, rust.msgpack_unpack
local unpack_list, maxn = unpack, table.maxn
local function unpacked(keep_offset, ok, ...)
    if ok == nil then
        error((...), 3)
    end
    if keep_offset then
        return ...
    end
    return select(2, ...)
end
local function unpack_args(name, s, limit, offset)
    if type(s) == "number" then
        s = tostring(s)
    elseif type(s) ~= "string" then
        error("bad argument #1 to '" .. name .. "' (string expected, got " .. type(s) .. ")", 3)
    end
    return s, limit, offset or 0
end
G.cmsgpack = {
    pack = function(...)
        if select("#", ...) == 0 then
            error("bad argument #0 to 'pack' (MessagePack pack needs input.)", 2)
        end
        return raw_pack(...)
    end,
    unpack = function(s)
        local results = { unpacked(false, raw_unpack(unpack_args("unpack", s, 0))) }
        return unpack_list(results, 1, maxn(results))
    end,
    unpack_one = function(s, offset)
        local results = { unpacked(true, raw_unpack(unpack_args("unpack_one", s, 1, offset))) }
        return unpack_list(results, 1, maxn(results))
    end,
    unpack_limit = function(s, limit, offset)
        local results = { unpacked(true, raw_unpack(unpack_args("unpack_limit", s, limit, offset))) }
        return unpack_list(results, 1, maxn(results))
    end,
}

-- The environment of every script: reads fall through to the globals, a missing one is
-- an error, writes are refused.
local env = setmetatable({}, {
    __index = function(_, name)
        local v = rawget(G, name)
        if v == nil then
            error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
        end
        return v
    end,
    __newindex = refuse_write,
    __metatable = false,
})
protected[env] = true

-- Chunks loaded by a script run in the script's environment, never the real globals;
-- bytecode is refused (a crafted one can crash the VM).
G.loadstring = function(s, name)
    if type(s) == "string" and s:byte(1) == 27 then
        return nil, "loading binary chunks is not allowed"
    end
    local f, e = raw_loadstring(s, name)
    if f then
        setfenv(f, env)
    end
    return f, e
end

-- Everything a script could reach, or leave behind for the next one, goes.
for _, name in ipairs({ "dofile", "loadfile", "load", "print", "getfenv", "setfenv", "module",
    "require", "collectgarbage", "gcinfo", "newproxy", "os", "io", "debug", "package" }) do
    G[name] = nil
end
for _, name in ipairs({ "string", "table", "math", "coroutine", "redis", "cjson", "bit", "cmsgpack" }) do
    G[name] = readonly_proxy(G[name])
end
G._G = env
-- Strings index the real string table, whose wrapped rep counts against the budget;
-- hide that metatable so nobody reaches the table behind the proxy.
getmetatable("").__metatable = false
G.getmetatable = getmetatable

-- The error handler: turns any error into Redis's error table and notes where in the
-- user's script it happened (the first frame that is neither C nor this prelude).
local where = rust.where
local function handler(e)
    e = translate(e)
    if type(e) ~= "table" then
        e = { err = "ERR " .. tostring(e) }
    end
    if rawget(e, "source") == nil then
        local source, line = where()
        if source then
            rawset(e, "source", source)
            rawset(e, "line", line)
        end
    end
    return e
end

-- The runner gives the script its KEYS and ARGV and takes them back after, with any
-- error table redis.call left behind: nothing of one run is seen by the next.
return env, function(f, keys, argv)
    rawset(G, "KEYS", keys)
    rawset(G, "ARGV", argv)
    local ok, result = raw_xpcall(f, handler)
    rawset(G, "KEYS", nil)
    rawset(G, "ARGV", nil)
    rawset(ctx, "pending", nil)
    return ok, result
end, redis
