-- /etc/fluent-bit/mask.lua: mask any run of 12 digits (the app already does; belt and braces).
function mask(tag, timestamp, record)
    for key, value in pairs(record) do
        if type(value) == "string" then
            local masked = value:gsub("%d%d%d%d[%s%-]?%d%d%d%d[%s%-]?%d%d%d%d", "************")
            record[key] = masked
        end
    end
    return 2, timestamp, record
end
