"""Check the device codec (device/sw) against every golden vector in protocol/vectors/.

MicroPython script: micropython tests/device/vector_runner.py [repo_root]
Prints one line per failure and, last, exactly "N passed, M failed". Exit status 1 on failure.
A vector is one entry of messages.json, decode.json, replay.json (a whole sequence) or
framing.json ("cobs" and "streams").
"""
import json
import sys
from binascii import hexlify, unhexlify


from checks import ROOT  # noqa: E402 - the repository root; device/ on sys.path

from sw import cobs, proto  # noqa: E402  (needs the path set above)
from sw.proto import ProtoError  # noqa: E402

VECTORS = ROOT + "/protocol/vectors/"
_BYTES_FIELDS = ("nonce", "sha256", "data")
_DIRS = {"up": proto.UP, "down": proto.DOWN}
_keys_cache = {}


def h(b):
    return hexlify(b).decode()


def keys_for(master_hex):
    k = _keys_cache.get(master_hex)
    if k is None:
        k = _keys_cache[master_hex] = proto.Keys(unhexlify(master_hex))
    return k


def mtype_of(name):
    return proto.TYPE_NAMES.index(name)


def fields_from_json(fields):
    """Vector field conventions -> pack_body dict (hex strings to bytes)."""
    out = {}
    for name in fields:
        v = fields[name]
        if name in _BYTES_FIELDS:
            v = unhexlify(v)
        elif name == "thumbnail" and v is not None:
            v = {"format": v["format"], "w": v["w"], "h": v["h"], "data": unhexlify(v["data"])}
        elif name == "entries":
            v = [[k, unhexlify(x)] for k, x in v]
        out[name] = v
    return out


def fields_to_json(fields):
    """unpack_body dict -> vector field conventions (bytes to hex strings)."""
    out = {}
    for name in fields:
        v = fields[name]
        if name in _BYTES_FIELDS:
            v = h(v)
        elif name == "thumbnail" and v is not None:
            v = {"format": v["format"], "w": v["w"], "h": v["h"], "data": h(v["data"])}
        elif name == "entries":
            v = [[k, h(x)] for k, x in v]
        out[name] = v
    return out


def outcome(keys, frame, direction, device_id, window, tag_len):
    """('accept', type name, fields as JSON, counter) or (reason, None, None, None)."""
    try:
        mtype, counter, body = proto.decode_frame(keys, frame, direction, device_id, window,
                                                  tag_len)
        fields = fields_to_json(proto.unpack_body(mtype, body))
    except ProtoError as e:
        return e.reason, None, None, None
    return "accept", proto.TYPE_NAMES[mtype], fields, counter


# --- one checker per file; each returns None (pass) or a failure description ----------------

def check_message(v, doc):
    keys = keys_for(doc["master_key"])
    mtype = mtype_of(v["type"])
    d = _DIRS[v["direction"]]
    body = proto.pack_body(mtype, fields_from_json(v["fields"]))
    frame = proto.encode_frame(keys, mtype, d, v["device_id"], v["counter"], body,
                               v["tag_len"], v["encrypt"])
    if h(frame) != v["frame"]:
        return f"encode: got {h(frame)}"
    window = proto.Window()
    window.highest = v["counter"]  # H = counter, not marked: the frame decodes to itself
    result, tname, fields, counter = outcome(keys, unhexlify(v["frame"]), d, v["device_id"],
                                             window, v["tag_len"])
    if (result, tname, fields, counter) != ("accept", v["type"], v["fields"], v["counter"]):
        return f"decode: {result} {tname} {fields} counter={counter}"
    return None


def check_decode(v, doc):
    window = proto.Window(v["highest"])
    result, tname, fields, counter = outcome(keys_for(doc["master_key"]), unhexlify(v["frame"]),
                                             _DIRS[v["direction"]], v["device_id"], window,
                                             v["tag_len"])
    if "error" in v:
        if result != v["error"]:
            return "expected {}, got {}".format(v["error"], result)
        return None
    if result != "accept":
        return f"expected accept, got {result}"
    if (tname, fields, counter, window.highest) != (v["type"], v["fields"], v["counter"],
                                                    v["highest_after"]):
        return f"got {tname} {fields} counter={counter} highest={window.highest}"
    return None


def check_replay(v, doc):
    keys = keys_for(doc["master_key"])
    window = proto.Window(v["highest"])
    for i, step in enumerate(v["steps"]):
        result = outcome(keys, unhexlify(step["frame"]), _DIRS[v["direction"]],
                         v["device_id"], window, v["tag_len"])[0]
        if result != step["expect"] or window.highest != step["highest_after"]:
            return "step {}: expected {}/{}, got {}/{}".format(
                i, step["expect"], step["highest_after"], result, window.highest)
    return None


def check_cobs(v, doc):
    frame = unhexlify(v["frame"])
    enc = cobs.encode(frame)
    if h(enc) != v["encoded"]:
        return f"encode: got {h(enc)}"
    if cobs.decode(enc[:-1]) != frame:
        return "decode: round trip differs"
    if stream_outputs(enc, False) != [{"frame": v["frame"]}]:
        return "stream decode differs"
    return None


def check_stream(v, doc):
    data = unhexlify(v["stream"])
    for bytewise in (False, True):
        got = stream_outputs(data, bytewise)
        if got != v["expect"]:
            return "{}: got {}".format("byte by byte" if bytewise else "one feed", got)
    return None


def stream_outputs(data, bytewise):
    dec = cobs.StreamDecoder()
    outs = []
    if bytewise:
        for i in range(len(data)):
            outs.extend(dec.feed(data[i:i + 1]))
    else:
        outs = dec.feed(data)
    return [{"error": r} if f is None else {"frame": h(f)} for f, r in outs]


PLAN = (
    ("messages.json", "vectors", check_message),
    ("decode.json", "vectors", check_decode),
    ("replay.json", "vectors", check_replay),
    ("framing.json", "cobs", check_cobs),
    ("framing.json", "streams", check_stream),
)


def main():
    passed = failed = 0
    for fname, key, checker in PLAN:
        with open(VECTORS + fname) as f:  # noqa: PTH123 - MicroPython has no pathlib
            doc = json.load(f)
        for v in doc[key]:
            try:
                err = checker(v, doc)
            except Exception as e:  # a crash is a failure of this vector, reported, not fatal
                err = f"raised {type(e).__name__}: {e}"
            if err is None:
                passed += 1
            else:
                failed += 1
                print("FAIL {}:{}:{}: {}".format(fname, key, v["id"], err))
    print(f"{passed} passed, {failed} failed")
    return failed


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
